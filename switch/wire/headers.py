"""Network headers: the bytes some links put between the length prefix and the ISO 8583 message.

A header says who a message is for and from, so a reply's header is not the request's: each kind
knows how to split one off a frame, how to derive the reply's from the request's, and how to
complete one for a message about to be sent (Visa's carries the message's length). They are
routing envelopes, not message content: the switch never journals or MACs them, and a frame whose
header is malformed is a `FramingError` (the stream cannot be trusted).

Kinds, chosen by a dialect's `[framing] header`:
- `tpdu`: 5 bytes (id 0x60, destination NII, source NII), POS terminals behind jPOS NACChannel;
  a reply swaps destination and source.
- `visa`: the 22-byte header of Visa's BASE I/V.I.P. links (header length, format flags, total
  message length, destination and source station ids in BCD, round-trip and status flags...); a
  reply swaps the station ids and carries its own length. A reject header (longer, with the
  rejected message's original header after it) is read whole; a reply to it gets a plain 22 bytes.
- `base24`: BASE24's 12 characters: "ISO", product indicator (2), release number (2), status (3),
  originator code (1), responder code (1); a reply carries the request's header with the
  dialect's responder code.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from switch.errors import FramingError


@attrs.frozen
class NetworkHeader:
    """No header: the message follows its length prefix directly."""

    kind: ClassVar[str] = "none"
    # The header a message starts with when the switch or an emulator originates it.
    default: ClassVar[bytes] = b""
    min_size: ClassVar[int] = 0

    def split(self, body: bytes) -> tuple[bytes, bytes]:
        """(header, message) of a frame's body."""
        return b"", body

    def for_reply(self, request_header: bytes) -> bytes:
        """The header of the answer to a message that came with `request_header`."""
        return b""

    def complete(self, header: bytes, message_size: int) -> bytes:
        """`header` as sent in front of a message of `message_size` bytes."""
        return b""

    def rejection(self, header: bytes) -> str | None:
        """The network's reject code when `header` says the message after it is one of ours sent
        back unprocessed; None for an ordinary message."""
        return None


@attrs.frozen
class Tpdu(NetworkHeader):
    kind: ClassVar[str] = "tpdu"
    default: ClassVar[bytes] = b"\x60\x00\x00\x00\x00"
    size: ClassVar[int] = 5
    min_size: ClassVar[int] = 5

    def split(self, body: bytes) -> tuple[bytes, bytes]:
        return body[:self.size], body[self.size:]

    def for_reply(self, request_header: bytes) -> bytes:
        if len(request_header) != self.size:
            return request_header
        return request_header[:1] + request_header[3:5] + request_header[1:3]

    def complete(self, header: bytes, message_size: int) -> bytes:
        if len(header) != self.size:
            raise FramingError(f"TPDU must be {self.size} bytes, got {len(header)}")
        return header


@attrs.frozen
class VisaHeader(NetworkHeader):
    kind: ClassVar[str] = "visa"
    size: ClassVar[int] = 22
    min_size: ClassVar[int] = 22
    # header length 22, header format 01, text format 02 (ISO 8583), length filled in when sent,
    # destination and source station 000000, every flag clear.
    default: ClassVar[bytes] = bytes([22, 0x01, 0x02]) + bytes(19)
    _LENGTH = slice(3, 5)
    _DESTINATION = slice(5, 8)
    _SOURCE = slice(8, 11)

    def split(self, body: bytes) -> tuple[bytes, bytes]:
        declared = body[0]
        if declared < self.size or declared >= len(body):
            raise FramingError(f"Visa header length byte {declared} is not from {self.size} to the frame's size")
        return body[:declared], body[declared:]

    def for_reply(self, request_header: bytes) -> bytes:
        header = bytearray(request_header[:self.size])
        if len(header) != self.size:
            return bytes(header)
        header[0] = self.size
        header[self._DESTINATION], header[self._SOURCE] = request_header[self._SOURCE], request_header[self._DESTINATION]
        return bytes(header)

    def rejection(self, header: bytes) -> str | None:
        """A reject header: 26 bytes or more, its bitmap's (bytes 22-23) first bit set, the reject
        code in BCD at bytes 24-25."""
        if len(header) < self.size + 4 or not header[self.size] & 0x80:
            return None
        return header[self.size + 2:self.size + 4].hex()

    def complete(self, header: bytes, message_size: int) -> bytes:
        if len(header) < self.size or header[0] != len(header):
            raise FramingError(f"Visa header must be at least {self.size} bytes and start with its length")
        total = len(header) + message_size
        if total > 0xFFFF:
            raise FramingError(f"message of {total} bytes does not fit the Visa header's length")
        return header[:3] + total.to_bytes(2, "big") + header[5:]


@attrs.frozen
class Base24Header(NetworkHeader):
    kind: ClassVar[str] = "base24"
    size: ClassVar[int] = 12
    min_size: ClassVar[int] = 12
    # "ISO", product 02 (POS), release 60, status 000, originator 5 (host), responder 0 (none yet)
    default: ClassVar[bytes] = b"ISO026000050"
    LITERAL: ClassVar[bytes] = b"ISO"
    responder: str = attrs.field(default="5", validator=lambda _s, _a, v: _check_code(v))

    def split(self, body: bytes) -> tuple[bytes, bytes]:
        header = body[:self.size]
        self._check(header)
        return header, body[self.size:]

    def _check(self, header: bytes) -> None:
        if len(header) != self.size or not header.startswith(self.LITERAL) or not header[3:].isdigit():
            raise FramingError('BASE24 header is not "ISO" and 9 digits')

    def for_reply(self, request_header: bytes) -> bytes:
        if len(request_header) != self.size:
            return request_header
        return request_header[:-1] + self.responder.encode()

    def complete(self, header: bytes, message_size: int) -> bytes:
        self._check(header)  # what this side sends, its peer must be able to read
        return header


def _check_code(value: str) -> None:
    if not (isinstance(value, str) and len(value) == 1 and value.isdigit()):
        raise ValueError("responder code must be one digit")


HEADER_KINDS: dict[str, type[NetworkHeader]] = {
    kind.kind: kind for kind in (NetworkHeader, Tpdu, VisaHeader, Base24Header)}
