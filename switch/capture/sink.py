"""Recording live traffic: what `--capture FILE` on serve, demo and terminal turns on.

Opt-in and for test environments only: unless `--sanitize` is given a capture holds real PANs,
tracks and PIN blocks, which is what replay needs and what production must never write. Opening
a capture therefore logs a warning. Frames are written synchronously, one flushed record each,
which is fine for test traffic and keeps the capture complete if the process dies.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from switch import logs
from switch.capture.jsonl import JsonlWriter
from switch.capture.pcapng import PcapngWriter
from switch.capture.record import CapturedFrame
from switch.capture.sanitize import Sanitizer
from switch.errors import UsageError
from switch.wire.dialect import Dialect

FORMATS = ("jsonl", "pcapng")
TEST_ONLY = "test environments only: unless sanitized, the capture holds real card data"


class Capture:
    def __init__(self, writer: JsonlWriter | PcapngWriter, sanitizer: Sanitizer | None = None):
        self._writer = writer
        self._sanitizer = sanitizer
        self._ids = itertools.count(1)
        self.dropped = 0  # frames a sanitizer could not read, left out rather than leaked
        self.failed = False  # a write failed: recording stopped, traffic goes on

    def connection_id(self, prefix: str) -> str:
        """A connection id unique within this capture."""
        return f"{prefix}-{next(self._ids)}"

    def record(self, connection: str, direction: str, dialect: Dialect, data: bytes) -> None:
        """Record one frame; a capture that cannot be written stops, never the traffic."""
        if self.failed:
            return
        if self._sanitizer is not None:
            cleaned = self._sanitizer.frame(dialect, data)
            if cleaned is None:
                self.dropped += 1
                return
            data = cleaned
        try:
            self._writer.write(CapturedFrame(time.time(), connection, direction, dialect.name, data))
        except (OSError, ValueError) as exc:  # disk full, or written after close()
            self.failed = True
            logs.warning("capture_stopped", reason=type(exc).__name__)

    def close(self) -> None:
        self.failed = True
        self._writer.close()


def format_for(path: str | Path, requested: str | None) -> str:
    if requested is not None:
        return requested
    return "pcapng" if str(path).endswith(".pcapng") else "jsonl"


def open_writer(path: str | Path, fmt: str | None = None, server_port: int = 8583) -> JsonlWriter | PcapngWriter:
    """A writer for `fmt`, by default chosen from the file name (*.pcapng, else JSON lines)."""
    if format_for(path, fmt) == "pcapng":
        return PcapngWriter.open(path, server_port)
    return JsonlWriter.open(path)


def open_capture(path: str | Path, fmt: str | None = None, *, sanitize: bool = False,
                 server_port: int = 8583) -> Capture:
    fmt = format_for(path, fmt)
    try:
        writer = open_writer(path, fmt, server_port)
    except OSError as exc:
        raise UsageError(f"--capture: cannot write {path}: {exc.strerror}") from None
    logs.warning("capture_enabled", file=str(path), format=fmt, sanitized=sanitize, note=TEST_ONLY)
    return Capture(writer, Sanitizer() if sanitize else None)


def add_arguments(parser) -> None:
    """The capture options shared by serve, demo --serve and terminal."""
    parser.add_argument("--capture", metavar="FILE",
                        help="record every frame to FILE for replay (TEST ENVIRONMENTS ONLY: real card data)")
    parser.add_argument("--capture-format", choices=FORMATS,
                        help="jsonl (default) or pcapng (default for *.pcapng)")
    parser.add_argument("--sanitize", action="store_true",
                        help="--capture: test PANs instead of real ones; no track, PIN, CVV2 or ICC data")


def from_args(args) -> Capture | None:
    if not args.capture:
        if args.sanitize or args.capture_format:
            raise UsageError("--sanitize and --capture-format need --capture FILE")
        return None
    capture = open_capture(args.capture, args.capture_format, sanitize=args.sanitize)
    print(f"cardswitch: warning: capturing to {args.capture}; {TEST_ONLY}", file=sys.stderr)
    return capture
