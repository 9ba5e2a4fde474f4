"""Converting a capture: any readable format in, JSON lines or pcapng out, optionally sanitized.

This is how a tcpdump capture becomes replayable with per-record dialects, how a capture with
real card data becomes one that can be shared, and how a JSON-lines capture is opened in
Wireshark.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from switch.capture.record import CapturedFrame
from switch.capture.sanitize import Sanitizer
from switch.capture.sink import open_writer
from switch.wire.dialect import load_dialect


def convert(records: list[CapturedFrame], out: str | Path, fmt: str | None, sanitizer: Sanitizer | None = None,
            server_port: int = 8583) -> tuple[int, int]:
    """Write `records` to `out`; returns (frames written, frames dropped as unreadable by the sanitizer)."""
    writer = open_writer(out, fmt, server_port)
    written = dropped = 0
    try:
        for record in records:
            if sanitizer is not None:
                data = sanitizer.frame(load_dialect(record.dialect), record.data)
                if data is None:
                    dropped += 1
                    continue
                record = attrs.evolve(record, data=data)
            writer.write(record)
            written += 1
    finally:
        writer.close()
    return written, dropped
