"""One captured frame: the unit every capture format reads and writes.

A frame is kept as the exact bytes that crossed the wire (length header, TPDU, payload, ETX), so
any reader can re-split it, a pcapng writer can put it in a TCP segment as it was, and replay can
send it again. Direction is seen from the server: "in" travelled client -> server (a terminal's
requests), "out" server -> client.
"""

from __future__ import annotations

import attrs

from switch.errors import CardswitchError
from switch.wire.dialect import Dialect
from switch.wire.framing import Frame

DIRECTIONS = ("in", "out")


class CaptureFormatError(CardswitchError):
    """A capture file that cannot be read; the text names the file and place, never its data."""


@attrs.frozen
class CapturedFrame:
    time: float  # seconds since the epoch
    connection: str
    direction: str = attrs.field(validator=attrs.validators.in_(DIRECTIONS))
    dialect: str
    data: bytes = attrs.field(repr=False)


def unframe(dialect: Dialect, data: bytes) -> Frame:
    """The single frame in `data`; a FramingError or CaptureFormatError when it is not exactly one."""
    framer = dialect.framer(max_frame=len(data))
    frames = framer.feed(data)
    if len(frames) != 1 or framer.buffered:
        raise CaptureFormatError(f"expected exactly one {dialect.name} frame, found {len(frames)}"
                                 + (" and trailing bytes" if framer.buffered else ""))
    return frames[0]


def reframe(dialect: Dialect, frame: Frame) -> bytes:
    """The wire bytes of a frame split off by a Framer (framing is deterministic)."""
    return dialect.framing.frame(frame.payload, frame.header)
