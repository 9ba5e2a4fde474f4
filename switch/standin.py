"""Stand-in processing (STIP): the switch decides for an issuer that is down or too slow.

Only within limits the issuer set: a maximum amount per transaction, a per-card daily count and
amount, and the processing codes and merchant categories it allows. An approval carries an
approval code from the switch and is advised to the issuer afterwards (0120/0220 via SAF); a
decline says why, in its response code and in the journal.
"""

from __future__ import annotations

import datetime
import secrets

import attrs

from switch.tomlfile import Table

DECLINE_AMOUNT = "61"  # exceeds withdrawal amount limit
DECLINE_COUNT = "65"  # exceeds withdrawal frequency limit
DECLINE_NOT_PERMITTED = "57"  # transaction not permitted to cardholder


@attrs.frozen
class StandInLimits:
    max_amount: int  # minor units, per transaction
    daily_count: int  # per card
    daily_amount: int  # per card, minor units
    processing_codes: frozenset[str] = frozenset({"00"})
    mccs: frozenset[str] | None = None  # None: any merchant category


def parse_stand_in(table: Table) -> StandInLimits | None:
    if not table.data:
        return None
    codes = table.get("processing_codes", list, ["00"], "an array of 2-digit processing codes",
                      lambda v: all(isinstance(c, str) and len(c) == 2 and c.isdigit() for c in v))
    mccs = table.get("mccs", list, None, "an array of 4-digit merchant category codes",
                     lambda v: all(isinstance(c, str) and len(c) == 4 and c.isdigit() for c in v))
    positive = lambda v: v >= 0  # noqa: E731
    limits = StandInLimits(
        max_amount=table.get("max_amount", int, expected="minor units, 0 or more", check=positive),
        daily_count=table.get("daily_count", int, expected="transactions per card per day", check=positive),
        daily_amount=table.get("daily_amount", int, expected="minor units per card per day", check=positive),
        processing_codes=frozenset(codes),
        mccs=frozenset(mccs) if mccs is not None else None,
    )
    table.finish()
    return limits


@attrs.frozen
class Decision:
    approved: bool
    code: str
    reason: str
    approval: str | None = None


class StandIn:
    """Per-card daily usage under stand-in, and the decisions; resets at UTC midnight."""

    def __init__(self) -> None:
        self._day = datetime.datetime.now(datetime.timezone.utc).date()
        self._usage: dict[tuple[str, str], tuple[int, int]] = {}  # (issuer, pan hash) -> (count, amount)

    def record(self, issuer: str, pan_hash: str, amount: int) -> None:
        self._roll()
        count, total = self._usage.get((issuer, pan_hash), (0, 0))
        self._usage[(issuer, pan_hash)] = (count + 1, total + amount)

    def release(self, issuer: str, pan_hash: str, amount: int, whole: bool, approved_at: float) -> None:
        """A stood-in approval was reversed (`whole`) or reduced by `amount`: it no longer counts
        against the card's daily limits, if it counted today (UTC) at all."""
        self._roll()
        if datetime.datetime.fromtimestamp(approved_at, datetime.timezone.utc).date() != self._day:
            return
        count, total = self._usage.get((issuer, pan_hash), (0, 0))
        self._usage[(issuer, pan_hash)] = (max(count - whole, 0), max(total - amount, 0))

    def decide(self, limits: StandInLimits, issuer: str, pan_hash: str, processing_code: str,
               mcc: str | None, amount: int) -> Decision:
        self._roll()
        if processing_code[:2] not in limits.processing_codes:
            return Decision(False, DECLINE_NOT_PERMITTED, f"stand-in: processing code {processing_code[:2]} not allowed")
        if limits.mccs is not None and mcc not in limits.mccs:
            return Decision(False, DECLINE_NOT_PERMITTED, "stand-in: merchant category not allowed")
        if amount > limits.max_amount:
            return Decision(False, DECLINE_AMOUNT, "stand-in: amount over the per-transaction limit")
        count, total = self._usage.get((issuer, pan_hash), (0, 0))
        if count + 1 > limits.daily_count:
            return Decision(False, DECLINE_COUNT, "stand-in: daily count limit reached")
        if total + amount > limits.daily_amount:
            return Decision(False, DECLINE_AMOUNT, "stand-in: daily amount limit reached")
        self._usage[(issuer, pan_hash)] = (count + 1, total + amount)
        return Decision(True, "00", "stand-in approval", approval="S" + "".join(secrets.choice("0123456789") for _ in range(5)))

    def _roll(self) -> None:
        today = datetime.datetime.now(datetime.timezone.utc).date()
        if today != self._day:
            self._day = today
            self._usage.clear()
