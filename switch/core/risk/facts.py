"""What risk rules judge about one request, read from its fields once.

The PAN is here only in memory, for BIN scopes; counters key cards by `pan_hash`.
"""

from __future__ import annotations

import attrs

from switch.wire.message import Message

# POS entry modes (field 22, first two digits) where the card itself was read.
CARD_READ_ENTRY_MODES = frozenset({"02", "05", "07", "80", "90", "91", "95"})
CARD_DATA_FIELDS = ("35", "45", "55")  # track 2, track 1, chip data


@attrs.define(slots=True)
class Facts:
    pan: str | None
    pan_hash: str | None
    issuer: str | None
    terminal: str | None  # 41
    acquirer: str | None  # 32
    merchant: str | None  # 42
    mcc: str | None  # 18
    country: str | None  # 19
    channel: str  # "present" or "not_present"
    amount: int
    has_pin: bool
    connection: object = None  # the terminal connection it came on (rate limits)


def channel_of(request: Message) -> str:
    """Card present when the card was read (track or chip data, or an entry mode that reads
    it); otherwise card not present (keyed, e-commerce, credential on file)."""
    fields = request.fields
    if fields.get("22", "")[:2] in CARD_READ_ENTRY_MODES or any(f in fields for f in CARD_DATA_FIELDS):
        return "present"
    return "not_present"


def facts_of(request: Message, pan: str | None, pan_hash: str | None, issuer: str | None,
             amount: int, connection: object = None) -> Facts:
    fields = request.fields
    return Facts(pan=pan, pan_hash=pan_hash, issuer=issuer, terminal=fields.get("41"),
                 acquirer=fields.get("32"), merchant=fields.get("42"), mcc=fields.get("18"),
                 country=fields.get("19"), channel=channel_of(request), amount=amount,
                 has_pin="52" in fields, connection=connection)
