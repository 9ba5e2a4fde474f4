"""Sans-IO message framing: bytes in, frames out; frames in, bytes out.

A `Framer` owns no socket. The connection code feeds it whatever `receive_some()` returned and
gets back every complete frame, however the stream was chunked. Framing is where a hostile peer
first touches the switch, so every malformed length is a `FramingError` that names the problem
without echoing the peer's bytes.
"""

from __future__ import annotations

import attrs

from switch.errors import CardswitchError

DEFAULT_MAX_FRAME = 8192
TPDU_LENGTH = 5
ETX = b"\x03"
LENGTH_KINDS = ("binary2", "ascii4")


class FramingError(CardswitchError):
    """The byte stream cannot be split into frames; the connection must be closed."""


@attrs.frozen
class Frame:
    """One message as it travelled: an optional TPDU header and the ISO 8583 payload."""

    payload: bytes
    tpdu: bytes = b""


def reply_tpdu(tpdu: bytes) -> bytes:
    """The TPDU of a reply: same id, destination and source NII swapped (NACChannel)."""
    if len(tpdu) != TPDU_LENGTH:
        return tpdu
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


@attrs.frozen
class FramingProfile:
    """How a dialect frames messages on the wire.

    length: "binary2" (2-byte big-endian) or "ascii4" (4 ASCII digits); the length never counts
    itself. tpdu: a 5-byte TPDU follows the length. etx: BASE24 style, a trailing 0x03 that the
    length counts.
    """

    length: str = attrs.field(default="binary2", validator=attrs.validators.in_(LENGTH_KINDS))
    tpdu: bool = False
    etx: bool = False

    @property
    def header_size(self) -> int:
        return 2 if self.length == "binary2" else 4

    def encode_length(self, size: int) -> bytes:
        if self.length == "binary2":
            if size > 0xFFFF:
                raise FramingError(f"frame of {size} bytes does not fit a 2-byte length header")
            return size.to_bytes(2, "big")
        if size > 9999:
            raise FramingError(f"frame of {size} bytes does not fit a 4-digit length header")
        return b"%04d" % size

    def decode_length(self, header: bytes) -> int:
        if self.length == "binary2":
            return int.from_bytes(header, "big")
        if not header.isdigit():
            raise FramingError("length header is not 4 ASCII digits")
        return int(header)

    def frame(self, payload: bytes, tpdu: bytes = b"") -> bytes:
        """Bytes to write for one message."""
        if self.tpdu:
            if len(tpdu) != TPDU_LENGTH:
                raise FramingError(f"TPDU must be {TPDU_LENGTH} bytes, got {len(tpdu)}")
        else:
            tpdu = b""
        body = tpdu + payload + (ETX if self.etx else b"")
        return self.encode_length(len(body)) + body


class Framer:
    """Splits one direction of a stream into frames, under any chunking.

    `feed()` returns the frames completed by the new bytes. After a `FramingError` the stream is
    out of sync for good; the caller closes the connection.
    """

    def __init__(self, profile: FramingProfile, max_frame: int = DEFAULT_MAX_FRAME):
        self.profile = profile
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._min_body = (TPDU_LENGTH if profile.tpdu else 0) + (1 if profile.etx else 0)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        header_size = self.profile.header_size
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= header_size:
            size = self.profile.decode_length(bytes(buffer[start : start + header_size]))
            if size > self.max_frame:
                raise FramingError(f"frame of {size} bytes exceeds the maximum of {self.max_frame}")
            if size <= self._min_body:
                raise FramingError(f"frame of {size} bytes is too short to hold a message")
            end = start + header_size + size
            if len(buffer) < end:
                break
            frames.append(self._split(bytes(buffer[start + header_size : end])))
            start = end
        if start:
            del buffer[:start]
        return frames

    def _split(self, body: bytes) -> Frame:
        if self.profile.etx:
            if body[-1:] != ETX:
                raise FramingError("frame does not end with ETX (0x03)")
            body = body[:-1]
        if self.profile.tpdu:
            return Frame(payload=body[TPDU_LENGTH:], tpdu=body[:TPDU_LENGTH])
        return Frame(payload=body)
