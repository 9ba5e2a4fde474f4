"""`routes lookup`: which entry wins for a PAN, and why each other covering entry lost.

The winner comes from the table's own `lookup`, so the explanation can never disagree with
what the switch does; the alternatives come from a scan of all entries (fine for a command,
too slow for the switch). Numbers of 12 digits or more are PANs and only shown masked.
"""

from __future__ import annotations

import attrs

from switch.errors import UsageError
from switch.routing import PAN_SPACE_DIGITS, RouteContext, RouteEntry, RoutingTable, rank
from switch.wire.masking import mask_pan

BIN_MAX_DIGITS = 11  # longer numbers are (partial) PANs and are masked


@attrs.frozen
class Explanation:
    shown: str  # the number as it may be displayed
    winner: RouteEntry | None
    losers: tuple[tuple[RouteEntry, str], ...]  # (entry, why it lost), best ranked first

    def as_json(self) -> dict[str, object]:
        return {
            "pan": self.shown,
            "issuer": self.winner.issuer if self.winner else None,
            "fallback": self.winner.fallback if self.winner else None,
            "entry": self.winner.describe() if self.winner else None,
            "lost": [{"entry": entry.describe(), "reason": reason} for entry, reason in self.losers],
        }

    def lines(self) -> list[str]:
        if self.winner is None:
            why = "no entry covers it" if not self.losers else "no covering entry matches"
            head = [f"{self.shown}: no route ({why})"]
        else:
            fallback = f" (fallback {self.winner.fallback})" if self.winner.fallback else ""
            head = [f"{self.shown}: {self.winner.issuer}{fallback}", f"  chosen: {self.winner.describe()}"]
        return head + [f"  lost:   {entry.describe()}: {reason}" for entry, reason in self.losers]


def display_number(number: str) -> str:
    return number if len(number) <= BIN_MAX_DIGITS else mask_pan(number)


def check_number(number: str, what: str) -> str:
    """A PAN or BIN argument, or UsageError that does not repeat the value."""
    if not (number.isascii() and number.isdigit() and 1 <= len(number) <= PAN_SPACE_DIGITS):
        raise UsageError(f"{what}: expected 1 to {PAN_SPACE_DIGITS} digits")
    return number


def explain(table: RoutingTable, pan: str, context: RouteContext | None = None) -> Explanation:
    winner = table.lookup(pan, context)
    padded = pan.ljust(PAN_SPACE_DIGITS, "0")
    covering = [e for e in table.entries if e is not winner and e.low <= padded[: len(e.low)] <= e.high]
    covering.sort(key=rank)
    return Explanation(display_number(pan), winner, tuple((e, _why(e, winner, pan, context)) for e in covering))


def _why(entry: RouteEntry, winner: RouteEntry | None, pan: str, context: RouteContext | None) -> str:
    if len(entry.low) > len(pan):
        return f"needs {len(entry.low)} digits, the number has {len(pan)}"
    if not entry.accepts(context):
        if context is None:
            return f"conditional ({entry.conditions}) and no transaction given"
        return f"conditions ({entry.conditions}) do not match the transaction"
    assert winner is not None, "a covering entry that matches would have won"
    if entry.width != winner.width:
        return "less specific (wider range)"
    if entry.condition_count != winner.condition_count:
        return "less specific (fewer kinds of condition)"
    if entry.priority != winner.priority:
        return f"lower priority ({entry.priority} < {winner.priority})"
    return "equal rank, later in the file (a conflict: see `routes check`)"
