"""Structured logs: one JSON object per line, to stderr or a file.

Events carry only what the caller passes, and callers pass masked values (see
switch.wire.masking). `event()` refuses nothing at run time; the PCI rule is enforced by
construction and by tests that grep every log for card data.

Every transaction writes a line, so this is on the hot path: one shared encoder, none of the
`logging` machinery, and, while a switch runs (`write_in_batches`), one write system call per
BATCH_INTERVAL for all the lines of that interval instead of one per line (each write also hands
the GIL to the journal's thread). Warnings are written at once, with what was held before
them. A log that cannot be written (disk full) never fails the transaction that logs.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO

import trio

from switch.errors import UsageError

BATCH_INTERVAL = 0.02  # seconds a line may wait while a switch batches its log writes
BATCH_LINES = 1000

_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
_stream: TextIO = sys.stderr
_held: list[str] | None = None  # lines waiting for the next batch write, while batching
_lock = threading.Lock()


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
    write_line(_ENCODER.encode({"ts": round(time.time(), 3), "event": name, **fields}))


# A text as a JSON string, in C: for JSON written as text where json's encoder costs too much
# (the txn line, switch.txnline; the journal's stored responses, switch.records).
quoted = json.encoder.encode_basestring_ascii


def write_line(line: str) -> None:
    """Write one event's JSON text (no newline), batched like every event."""
    with _lock:  # the journal's writer thread logs too
        if _held is None:
            _write(line + "\n")
            return
        _held.append(line)
        if len(_held) >= BATCH_LINES:
            _write_held()


def warning(name: str, **fields: object) -> None:
    event(name, level="warning", **fields)
    flush()


def flush() -> None:
    """Write the lines held for the next batch, now."""
    with _lock:
        _write_held()


def _write_held() -> None:
    if _held:
        text = "\n".join(_held) + "\n"
        _held.clear()
        _write(text)


def _write(text: str) -> None:
    try:
        _stream.write(text)
    except (OSError, ValueError):
        pass  # a full disk or a closed stream must not fail a transaction


async def write_in_batches() -> None:
    """Batch log writes for as long as this task runs (a running switch); writes what is held
    when it ends."""
    global _held
    with _lock:
        _held = []
    try:
        while True:
            await trio.sleep(BATCH_INTERVAL)
            flush()
    finally:
        with _lock:
            _write_held()
            _held = None
