"""The in-memory ISO 8583 message: an MTI and its data elements.

Field values are strings as pyiso8583 gives them (binary fields as upper-case hex), keyed by the
field number as a string. The same value therefore re-encodes into any dialect, binary or ASCII.
"""

from __future__ import annotations

from typing import overload

from switch.wire.masking import masked_fields

# Request MTI -> response MTI (DESIGN.md); 0421 is a repeat of 0420 and is answered with 0430.
RESPONSE_MTI = {
    "0100": "0110", "0101": "0110", "0120": "0130", "0121": "0130",
    "0200": "0210", "0201": "0210", "0220": "0230", "0221": "0230",
    "0400": "0410", "0401": "0410", "0420": "0430", "0421": "0430",
    "0500": "0510", "0800": "0810", "0820": "0830",
}


def response_mti(mti: str) -> str:
    """The response class of any 4-digit MTI: third digit made odd (0100 -> 0110, 0421 -> 0430)."""
    if mti in RESPONSE_MTI:
        return RESPONSE_MTI[mti]
    digit = int(mti[2])
    return mti[:2] + str(digit + 1 if digit % 2 == 0 else digit) + "0"


def is_response(mti: str) -> bool:
    return int(mti[2]) % 2 == 1


class Message:
    """An MTI plus fields; `repr()` masks card data so a stray log line cannot leak it."""

    __slots__ = ("mti", "fields")

    def __init__(self, mti: str, fields: dict[str, str] | None = None):
        self.mti = mti
        self.fields = fields if fields is not None else {}

    @overload
    def get(self, field: str) -> str | None: ...
    @overload
    def get(self, field: str, default: str) -> str: ...
    @overload
    def get(self, field: str, default: str | None) -> str | None: ...

    def get(self, field: str, default: str | None = None) -> str | None:
        return self.fields.get(field, default)

    def __getitem__(self, field: str) -> str:
        return self.fields[field]

    def __setitem__(self, field: str, value: str) -> None:
        self.fields[field] = value

    def __contains__(self, field: str) -> bool:
        return field in self.fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.mti, self.fields) == (other.mti, other.fields)

    def copy(self) -> Message:
        return Message(self.mti, dict(self.fields))

    def masked(self) -> dict[str, str]:
        return {"mti": self.mti, **masked_fields(self.fields)}

    def __repr__(self) -> str:
        return f"Message({self.masked()!r})"
