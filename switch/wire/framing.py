"""Sans-IO message framing: bytes in, frames out; frames in, bytes out.

A `Framer` owns no socket. The connection code feeds it whatever `receive_some()` returned and
gets back every complete frame, however the stream was chunked. Framing is where a hostile peer
first touches the switch, so every malformed length is a `FramingError` that names the problem
without echoing the peer's bytes.
"""

from __future__ import annotations

import attrs

from switch.errors import FramingError
from switch.wire.headers import NetworkHeader

DEFAULT_MAX_FRAME = 8192
ETX = b"\x03"
# "binary2": 2-byte big-endian; "ascii4": 4 ASCII digits; "vap": 2-byte big-endian and two zero
# bytes (Visa's VAP channels). The length never counts itself.
LENGTH_KINDS = ("binary2", "ascii4", "vap")
__all__ = ["FramingError", "Frame", "FramingProfile", "Framer", "DEFAULT_MAX_FRAME"]


class Frame:
    """One message as it travelled: the network header in front of it (switch.wire.headers;
    empty when the dialect has none) and the ISO 8583 payload. Never changed once made. A plain
    class (two are made a transaction), which the compiled form makes an extension type
    (framing.pxd); its repr shows no bytes, which may be card data."""

    __slots__ = ("payload", "header")

    def __init__(self, payload: bytes, header: bytes = b""):
        self.payload = payload
        self.header = header

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and (self.payload, self.header) == (other.payload, other.header)


@attrs.frozen
class FramingProfile:
    """How a dialect frames messages on the wire.

    length: one of LENGTH_KINDS. header: the network header between the length and the message
    (a TPDU, Visa's or BASE24's). etx: BASE24 style, a trailing 0x03 that the length counts.
    """

    length: str = attrs.field(default="binary2", validator=attrs.validators.in_(LENGTH_KINDS))
    header: NetworkHeader = NetworkHeader()
    etx: bool = False

    @property
    def prefix_size(self) -> int:
        """Bytes of the length prefix (the network header, if any, comes after it)."""
        return 2 if self.length == "binary2" else 4

    def encode_length(self, size: int) -> bytes:
        if self.length == "ascii4":
            if size > 9999:
                raise FramingError(f"frame of {size} bytes does not fit a 4-digit length header")
            return b"%04d" % size
        if size > 0xFFFF:
            raise FramingError(f"frame of {size} bytes does not fit a 2-byte length header")
        return size.to_bytes(2, "big") + (b"\x00\x00" if self.length == "vap" else b"")

    def decode_length(self, prefix: bytes) -> int:
        if self.length == "ascii4":
            if not prefix.isdigit():
                raise FramingError("length header is not 4 ASCII digits")
            return int(prefix)
        if self.length == "vap" and prefix[2:] != b"\x00\x00":
            raise FramingError("VAP length header's last two bytes are not zero")
        return int.from_bytes(prefix[:2], "big")

    def reply_header(self, request_header: bytes) -> bytes:
        """The network header of the answer to a message that came with `request_header`."""
        return self.header.for_reply(request_header)

    def frame(self, payload: bytes, header: bytes = b"") -> bytes:
        """Bytes to write for one message; `header` is completed for it (Visa's carries the
        message's length)."""
        body = self.header.complete(header, len(payload)) + payload + (ETX if self.etx else b"")
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
        self._min_body = profile.header.min_size + (1 if profile.etx else 0)
        # What every frame asks of the profile, asked once: a call or two per frame otherwise.
        self._prefix_size = profile.prefix_size
        self._binary2 = profile.length == "binary2"
        self._etx = profile.etx
        self._header = profile.header

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        prefix_size = self._prefix_size
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= prefix_size:
            if self._binary2:  # two bytes, big-endian: read here, not by a call to the profile
                size = buffer[start] << 8 | buffer[start + 1]
            else:
                size = self.profile.decode_length(bytes(buffer[start : start + prefix_size]))
            if size > self.max_frame:
                raise FramingError(f"frame of {size} bytes exceeds the maximum of {self.max_frame}")
            if size <= self._min_body:
                raise FramingError(f"frame of {size} bytes is too short to hold a message")
            end = start + prefix_size + size
            if len(buffer) < end:
                break
            frames.append(self._split(bytes(buffer[start + prefix_size : end])))
            start = end
        if start:
            del buffer[:start]
        return frames

    def _split(self, body: bytes) -> Frame:
        if self._etx:
            if body[-1:] != ETX:
                raise FramingError("frame does not end with ETX (0x03)")
            body = body[:-1]
        header, payload = self._header.split(body)
        return Frame(payload=payload, header=header)
