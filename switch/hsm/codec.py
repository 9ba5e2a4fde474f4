"""Host-command message layout, payShield style, without I/O.

A request is `header` (fixed length, echoed back untouched) + 2-character command code + data.
A response is the same header + the response code (the command with its second character
advanced: NC->ND, CA->CB, CY->CZ) + a 2-digit error code + data. Framing (the 2-byte length) is
the transport's job, see `switch.hsm.server`.
"""

from __future__ import annotations

import attrs

DEFAULT_HEADER_LENGTH = 4


class CommandError(Exception):
    """Ends a command with a payShield-style error code; `reason` is for logs, never data."""

    def __init__(self, code: str, reason: str = ""):
        super().__init__(f"error {code}: {reason}" if reason else f"error {code}")
        self.code = code
        self.reason = reason


@attrs.frozen
class Request:
    header: bytes
    command: str
    data: str


def response_code(command: str) -> str:
    """The command with its second character advanced; anything unreadable becomes 'ZZ'."""
    if len(command) != 2 or not command.isascii() or not command.isalnum():
        return "ZZ"
    last = command[1]
    advanced = {"Z": "A", "z": "a", "9": "0"}.get(last, chr(ord(last) + 1))
    return command[0] + advanced


def parse_request(frame: bytes, header_length: int = DEFAULT_HEADER_LENGTH) -> Request:
    """Split a frame; raises CommandError('15') with what was wrong if it cannot."""
    header, body = frame[:header_length], frame[header_length:]
    if len(header) < header_length or len(body) < 2:
        raise CommandError("15", "frame shorter than header and command code")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise CommandError("15", "command is not ASCII") from None
    return Request(header, text[:2], text[2:])


def build_response(header: bytes, command: str, error_code: str, data: str = "") -> bytes:
    return header + f"{response_code(command)}{error_code}{data}".encode("ascii")


@attrs.frozen
class Response:
    header: bytes
    code: str
    error_code: str
    data: str


def parse_response(frame: bytes, header_length: int = DEFAULT_HEADER_LENGTH) -> Response:
    """The client's side: raises ValueError when the frame is not a response at all."""
    header, body = frame[:header_length], frame[header_length:]
    if len(header) < header_length or len(body) < 4:
        raise ValueError("response shorter than header, code and error code")
    text = body.decode("ascii", errors="replace")
    return Response(header, text[:2], text[2:4], text[4:])
