"""Stand-in processing (STIP): the switch decides for an issuer that is down or too slow.

Only within limits the issuer set: a maximum amount per transaction, a per-card daily count and
amount, and the processing codes and merchant categories it allows. An approval carries an
approval code from the switch and is advised to the issuer afterwards (0120/0220 via SAF); a
decline says why, in its response code and in the journal.

The day is the caller's (`today`, a function returning the UTC date): a test can cross midnight
without waiting for it.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Callable

import attrs

from switch.core.codes import RC


@attrs.frozen
class StandInLimits:
    max_amount: int  # minor units, per transaction
    daily_count: int  # per card
    daily_amount: int  # per card, minor units
    processing_codes: frozenset[str] = frozenset({"00"})
    mccs: frozenset[str] | None = None  # None: any merchant category


@attrs.frozen
class Decision:
    approved: bool
    code: str
    reason: str
    approval: str | None = None


COUNT_REACHED = Decision(False, RC.COUNT_LIMIT, "stand-in: daily count limit reached")
AMOUNT_REACHED = Decision(False, RC.AMOUNT_LIMIT, "stand-in: daily amount limit reached")


def utc_day(timestamp: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).date()


class StandIn:
    """Per-card daily usage under stand-in, and the decisions; resets at UTC midnight."""

    def __init__(self, today: Callable[[], datetime.date]) -> None:
        self._today = today
        self._day = today()
        self._usage: dict[tuple[str, str], tuple[int, int]] = {}  # (issuer, pan hash) -> (count, amount)

    def record(self, issuer: str, pan_hash: str, amount: int) -> None:
        self._roll()
        count, total = self._usage.get((issuer, pan_hash), (0, 0))
        self._usage[(issuer, pan_hash)] = (count + 1, total + amount)

    def release(self, issuer: str, pan_hash: str, amount: int, whole: bool, approved_at: float) -> None:
        """A stood-in approval was reversed (`whole`) or reduced by `amount`: it no longer counts
        against the card's daily limits, if it counted today (UTC) at all."""
        self._roll()
        if utc_day(approved_at) != self._day:
            return
        count, total = self._usage.get((issuer, pan_hash), (0, 0))
        self._usage[(issuer, pan_hash)] = (max(count - whole, 0), max(total - amount, 0))

    def decide(self, limits: StandInLimits, issuer: str, pan_hash: str, processing_code: str,
               mcc: str | None, amount: int, counted_here: bool = True) -> Decision:
        """The decision on the limits; the card's daily usage is counted here unless
        `counted_here` is False (a shared journal counts it: switch.records `reserve_stand_in`)."""
        self._roll()
        if processing_code[:2] not in limits.processing_codes:
            return Decision(False, RC.NOT_PERMITTED_TO_CARDHOLDER, f"stand-in: processing code {processing_code[:2]} not allowed")
        if limits.mccs is not None and mcc not in limits.mccs:
            return Decision(False, RC.NOT_PERMITTED_TO_CARDHOLDER, "stand-in: merchant category not allowed")
        if amount > limits.max_amount:
            return Decision(False, RC.AMOUNT_LIMIT, "stand-in: amount over the per-transaction limit")
        if counted_here:
            refused = self._count(limits, issuer, pan_hash, amount)
            if refused is not None:
                return refused
        return Decision(True, RC.APPROVED, "stand-in approval", approval="S" + "".join(secrets.choice("0123456789") for _ in range(5)))

    def _count(self, limits: StandInLimits, issuer: str, pan_hash: str, amount: int) -> Decision | None:
        count, total = self._usage.get((issuer, pan_hash), (0, 0))
        if count + 1 > limits.daily_count:
            return COUNT_REACHED
        if total + amount > limits.daily_amount:
            return AMOUNT_REACHED
        self._usage[(issuer, pan_hash)] = (count + 1, total + amount)
        return None

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self._usage.clear()
