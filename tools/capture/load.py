"""Reading any capture: pcap/pcapng by their magic numbers, else the project's JSON lines."""

from __future__ import annotations

from pathlib import Path

from switch.capture.record import CapturedFrame, CaptureFormatError
from switch.wire.dialect import Dialect, load_dialect
from tools.capture.jsonl import read_jsonl
from tools.capture.pcap import is_packet_capture, read_packet_capture


def load_capture(path: str | Path, dialect: Dialect | None = None,
                 server_port: int | None = None) -> list[CapturedFrame]:
    """Frames in capture order. Packet captures carry no dialect, so `dialect` (default
    iso87-binary) splits their streams; JSON lines name their own dialect per record."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CaptureFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if is_packet_capture(head):
        return read_packet_capture(path, dialect or load_dialect(), server_port)
    try:
        return read_jsonl(path)
    except UnicodeDecodeError:
        raise CaptureFormatError(f"{path}: neither pcap, pcapng nor JSON lines") from None
