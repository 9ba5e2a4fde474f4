"""Acquirer reconciliation (0500/0510, and the 0520/0530 advice): a terminal or acquirer sends
its batch totals for a business date; the switch compares them with its journal's.

ISO 8583:1987's fields: 74 credits number, 75 credits reversal number, 76 debits number, 77
debits reversal number (n10); 86-89 the same as amounts (n16, minor units); 97 the net amount,
C or D then 16 digits. Purchases (processing code 00, cash 01) are debits and refunds (20)
credits; a reversal counts as the reversal of what it reversed, by the amount it took off (a
partial reversal by its part); declined and failed requests count nowhere. The net is debits
less credits, both after their reversals: D when the cardholders were debited more than
credited, C otherwise. A field the sender leaves out counts as zero.
"""

from __future__ import annotations

import datetime

import attrs

DEBIT_KINDS = frozenset({"00", "01"})  # processing code, first two digits
CREDIT_KINDS = frozenset({"20"})
COUNT_FIELDS = {"74": "credits", "75": "credit_reversals", "76": "debits", "77": "debit_reversals"}
AMOUNT_FIELDS = {"86": "credits_amount", "87": "credit_reversals_amount", "88": "debits_amount",
                 "89": "debit_reversals_amount"}
NET_FIELD = "97"


@attrs.frozen
class Totals:
    credits: int = 0
    credit_reversals: int = 0
    debits: int = 0
    debit_reversals: int = 0
    credits_amount: int = 0
    credit_reversals_amount: int = 0
    debits_amount: int = 0
    debit_reversals_amount: int = 0

    @property
    def net(self) -> int:
        """Debits less credits, both after their reversals (minor units)."""
        return ((self.debits_amount - self.debit_reversals_amount)
                - (self.credits_amount - self.credit_reversals_amount))

    def fields(self) -> dict[str, str]:
        """As fields 74-77, 86-89 and 97."""
        values = {field: f"{getattr(self, name):010d}" for field, name in COUNT_FIELDS.items()}
        values |= {field: f"{getattr(self, name):016d}" for field, name in AMOUNT_FIELDS.items()}
        values[NET_FIELD] = ("D" if self.net >= 0 else "C") + f"{abs(self.net):016d}"
        return values

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Totals:
        """The sender's totals (fields already checked to be digits by validation)."""
        named = {name: int(fields.get(field, "0")) for field, name in (COUNT_FIELDS | AMOUNT_FIELDS).items()}
        return cls(**named)


def differences(theirs: Totals, ours: Totals, their_net: str | None) -> list[str]:
    """The fields whose values differ (none: the totals agree). Field 97, when sent, must be
    the net of the sender's own totals as well as ours."""
    ours_fields, theirs_fields = ours.fields(), theirs.fields()
    differ = [field for field in (*COUNT_FIELDS, *AMOUNT_FIELDS) if ours_fields[field] != theirs_fields[field]]
    if their_net is not None and their_net != ours_fields[NET_FIELD]:
        differ.append(NET_FIELD)
    return differ


def net_field_valid(value: str) -> bool:
    return len(value) == 17 and value[0] in "CD" and value[1:].isascii() and value[1:].isdigit()


def settlement_date_valid(mmdd: str) -> bool:
    """Field 15 names a day of the year (29 February included)."""
    return business_date_of(mmdd, datetime.date(2024, 7, 1)) is not None


def business_date_of(mmdd: str, today: datetime.date) -> datetime.date | None:
    """The date field 15 (MMDD) names: the one nearest `today`, the business date now (a batch
    for 31 December sent on 1 January is last year's); None when it is no date."""
    if not (len(mmdd) == 4 and mmdd.isascii() and mmdd.isdigit()):
        return None
    candidates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            candidates.append(datetime.date(year, int(mmdd[:2]), int(mmdd[2:])))
        except ValueError:
            continue
    return min(candidates, key=lambda date: abs(date - today)) if candidates else None
