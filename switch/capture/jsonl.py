"""The project's capture format: JSON lines, one frame per line.

    {"time": 1763780000.123456, "connection": "terminals-1", "direction": "in",
     "dialect": "iso87-binary", "hex": "00..."}

Plain text so a capture can be diffed, grepped for MTIs and cut down with any editor; `hex` is the
whole wire frame including its length header. Writing is here, for `--capture`; reading is
the tools' business (`cardswitch replay`, `cardswitch capture convert`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from switch.capture.record import CapturedFrame


def dumps(record: CapturedFrame) -> str:
    return json.dumps({"time": round(record.time, 6), "connection": record.connection,
                       "direction": record.direction, "dialect": record.dialect,
                       "hex": record.data.hex()}, separators=(",", ":"))


class JsonlWriter:
    """Appends records as they happen, flushed per line so a crash loses at most one frame."""

    def __init__(self, handle: IO[str]):
        self._handle = handle

    @classmethod
    def open(cls, path: str | Path) -> JsonlWriter:
        return cls(open(path, "w", encoding="utf-8"))

    def write(self, record: CapturedFrame) -> None:
        self._handle.write(dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
