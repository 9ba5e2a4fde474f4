"""The key change an issuer sends over its link (0800, field 70 = 101): a new zone PIN key or
zone MAC key, encrypted under the zone master key the two sides share. Free of I/O: the issuer
emulator builds it, the switch reads it (switch.issuer_keys imports the key through the HSM).

Field 48 carries TLV subelements (2-digit tag, 2-digit length, value), DESIGN.md's layout:

    01  key type: ZPK or ZAK
    02  the new key under the ZMK: X + 32 hex (double length) or Y + 48 hex (triple length)
    03  its key check value: 6 hex

The answer is an 0810 with field 39: 00 done, 30 field 48 unreadable, 96 not done.
"""

from __future__ import annotations

import attrs

from switch.wire.field48 import Field48, Layout
from switch.wire.message import Message

KEY_CHANGE = "101"  # field 70
KEY_TYPES = ("ZPK", "ZAK")
_TYPE, _KEY, _KCV = "01", "02", "03"
_HEX = frozenset("0123456789ABCDEF")


@attrs.frozen(repr=False)
class KeyChange:
    key_type: str  # ZPK or ZAK
    under_zmk: str  # scheme letter + hex
    kcv: str

    def __repr__(self) -> str:
        return f"KeyChange({self.key_type}, kcv={self.kcv})"


def is_key_change(message: Message) -> bool:
    return message.mti == "0800" and message.fields.get("70") == KEY_CHANGE


def key_change_request(change: KeyChange, stan: str, transmitted: str) -> Message:
    """The issuer's 0800 announcing `change`."""
    field48 = Field48("", ((_TYPE, change.key_type), (_KEY, change.under_zmk), (_KCV, change.kcv)))
    return Message("0800", {"7": transmitted, "11": stan, "48": field48.encode(), "70": KEY_CHANGE})


def read_key_change(message: Message) -> KeyChange | None:
    """The key change an 0800/101 carries, or None when field 48 does not hold one."""
    read = Field48.parse(message.fields.get("48", ""), Layout.PLAIN)
    subelements = dict(read.subelements if read is not None else ())
    key_type, key, kcv = (subelements.get(tag, "") for tag in (_TYPE, _KEY, _KCV))
    well_formed = (key_type in KEY_TYPES and key[:1] in ("X", "Y") and len(key) in (33, 49)
                   and _HEX.issuperset(key[1:].upper()) and len(kcv) == 6 and _HEX.issuperset(kcv.upper()))
    return KeyChange(key_type, key.upper(), kcv.upper()) if well_formed else None
