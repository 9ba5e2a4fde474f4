"""Where a message's MAC sits in its encoded form, and which bytes it covers.

ISO 8583:1987 puts the MAC in the message's last field: 64 without a secondary bitmap, 128 with
one. The MAC (ANSI X9.19, computed by the HSM) covers the message as sent in its dialect, from
the MTI up to and excluding the MAC's own bytes, with the MAC field's bitmap bit set: no length
header, no TPDU, no message header. Because the MAC field comes last and has a fixed width, a
message is MACed by encoding it with a zero MAC, MACing all but its last bytes and putting the
MAC there; a received one is checked over the bytes before its MAC.

These are the byte-level facts only, free of keys and I/O: the switch (switch.macs) and the
emulators have the HSM compute and check the MAC over what this module cuts out.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

import attrs

from switch.wire.message import Message

if TYPE_CHECKING:  # the 1993 mapping (imported by switch.wire.dialect) places MACs with this module
    from switch.wire.dialect import Dialect

PRIMARY, SECONDARY = "64", "128"
MAC_FIELDS = (PRIMARY, SECONDARY)
MAC_HEX_DIGITS = 16  # an 8-byte MAC, as a Message holds it
ZERO_MAC = "0" * MAC_HEX_DIGITS
_HEX = frozenset(string.hexdigits)
_SECONDARY_BITMAP = frozenset(str(field) for field in range(65, 128))  # 128 itself is the MAC's


def mac_field(fields: dict[str, str]) -> str:
    """The field a message's MAC belongs in: 128 when it has a secondary bitmap's field, else 64.
    (One set operation in C: converting every field number cost a tenth of a MAC.)"""
    return PRIMARY if _SECONDARY_BITMAP.isdisjoint(fields) else SECONDARY


def mac_width(dialect: Dialect, field: str) -> int:
    """How many bytes the MAC takes at the end of a message in `dialect`: 8 binary bytes, or 16 hex
    characters. ValueError for a dialect whose MAC field is anything else (variable length)."""
    spec = dialect.spec.get(field, {})
    if spec.get("len_type") != 0 or (spec.get("data_enc"), spec.get("max_len")) not in (("b", 8), ("ascii", 16)):
        raise ValueError(f"field {field}: a fixed 8-byte binary or 16-hex-character MAC field")
    return int(spec["max_len"])


def check_dialect(dialect: Dialect) -> None:
    """ValueError unless messages of `dialect` can carry a MAC in field 64 and in field 128."""
    for field in MAC_FIELDS:
        mac_width(dialect, field)


def _header_length(dialect: Dialect) -> int:
    """A fixed message header before the MTI is not covered (none in the shipped dialects)."""
    header = dialect.spec.get("h", {})
    return int(header.get("max_len", 0)) if header.get("len_type") == 0 else 0


def _encoded(mac: str, dialect: Dialect, field: str) -> bytes:
    return bytes.fromhex(mac) if dialect.spec[field]["data_enc"] == "b" else mac.upper().encode("ascii")


@attrs.frozen(repr=False)
class MacInput:
    """A received message's MAC (hex) and the bytes it covers."""

    field: str
    data: bytes
    mac: str

    def __repr__(self) -> str:  # the data is a whole message: card data
        return f"MacInput(field {self.field}, {len(self.data)} bytes)"


def received_mac(message: Message, payload: bytes, dialect: Dialect) -> MacInput | str:
    """The MAC `message` (decoded from `payload` in `dialect`) carries and what it covers; or, when
    there is none to check, why (for the journal: it names the field, never a value)."""
    field = SECONDARY if SECONDARY in message.fields else PRIMARY
    mac = message.fields.get(field)
    if mac is None:
        return f"field {mac_field(message.fields)}: MAC missing"
    if field == PRIMARY and mac_field(message.fields) == SECONDARY:
        return "field 64: MAC before fields of the secondary bitmap (field 128 expected)"
    width = mac_width(dialect, field)
    start = _header_length(dialect)
    if len(mac) != MAC_HEX_DIGITS or not _HEX.issuperset(mac) or len(payload) < start + width \
            or payload[-width:].upper() != _encoded(mac, dialect, field).upper():
        return f"field {field}: not an 8-byte MAC at the end of the message"
    return MacInput(field, payload[start:-width], mac.upper())


def mac_failure(field: str, verified: bool | None) -> str | None:
    """Why a checked MAC failed (`verified` None: the HSM could not tell), naming the field and
    never a value; None when it verified."""
    if verified is None:
        return f"field {field}: MAC not checked (HSM unavailable or in error)"
    return None if verified else f"field {field}: MAC does not verify"


def with_zero_mac(message: Message) -> tuple[Message, str]:
    """A copy of `message` with a zero MAC in the field its MAC belongs in (and no other), and
    that field."""
    fields = {f: v for f, v in message.fields.items() if f not in MAC_FIELDS}
    field = mac_field(fields)
    fields[field] = ZERO_MAC
    return Message(message.mti, fields), field


def covered(payload: bytes, dialect: Dialect, field: str) -> bytes:
    """What the MAC of `payload` (encoded with a zero MAC in `field`) covers."""
    return payload[_header_length(dialect) : -mac_width(dialect, field)]


def with_mac(payload: bytes, dialect: Dialect, field: str, mac: str) -> bytes:
    """`payload` (encoded with a zero MAC in `field`) with `mac` (hex) in its place."""
    return payload[: -mac_width(dialect, field)] + _encoded(mac, dialect, field)
