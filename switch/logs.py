"""Structured logs: one JSON object per line, to stderr or a file.

Events carry only what the caller passes, and callers pass masked values (see
switch.wire.masking). `event()` refuses nothing at run time; the PCI rule is enforced by
construction and by tests that grep every log for card data.

Every transaction writes a line, so this is on the hot path: one shared encoder, one write to a
line-buffered stream, none of the `logging` machinery. A log that cannot be written (disk full)
never fails the transaction that logs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from switch.errors import UsageError

_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
_stream: TextIO = sys.stderr


def configure(log_file: str | None = None) -> None:
    """Send cardswitch events to `log_file` (appending) or stderr, one JSON line each."""
    global _stream
    if _stream is not sys.stderr:
        _stream.close()
    try:
        _stream = open(log_file, "a", buffering=1, encoding="utf-8") if log_file else sys.stderr
    except OSError as exc:
        _stream = sys.stderr
        raise UsageError(f"log file {log_file}: cannot be opened for writing ({exc.strerror})") from None


def event(name: str, **fields: object) -> None:
    line = _ENCODER.encode({"ts": round(time.time(), 3), "event": name, **fields})
    try:
        _stream.write(line + "\n")
    except (OSError, ValueError):
        pass  # a full disk or a closed stream must not fail a transaction


def warning(name: str, **fields: object) -> None:
    event(name, level="warning", **fields)
