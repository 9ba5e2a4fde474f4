"""`routes diff OLD NEW`: which BINs would go somewhere else, as a reviewer wants to read it.

Both tables are already flattened into disjoint segments, so one merge walk over the two segment
lists finds every stretch of the 19-digit space whose destination differs; adjacent stretches
with the same old and new destination are joined, and each is printed as a BIN range at the
shortest length (at least 6 digits) that expresses it exactly, with how many BINs it holds.
A destination is everything the segment's candidates say: issuer, fallback and conditions.
"""

from __future__ import annotations

from typing import Iterator

import attrs

from switch.routing import SCALE, SPACE_END, RouteEntry, RoutingTable

MIN_BIN_DIGITS = 6


@attrs.frozen
class Change:
    start: int  # in the 19-digit space, end exclusive
    end: int
    old: str
    new: str

    def bin_range(self) -> tuple[str, str, int]:
        """(low, high, digits): the change as a BIN range, exactly."""
        digits = MIN_BIN_DIGITS
        while self.start % SCALE[digits] or self.end % SCALE[digits]:
            digits += 1
        low, high = self.start // SCALE[digits], self.end // SCALE[digits] - 1
        return str(low).zfill(digits), str(high).zfill(digits), digits

    def line(self) -> str:
        low, high, digits = self.bin_range()
        count = int(high) - int(low) + 1
        span = low if low == high else f"{low}-{high}"
        plural = "BIN" if count == 1 else "BINs"
        return f"{span} ({count} {plural} of {digits} digits): {self.old} -> {self.new}"

    def as_json(self) -> dict[str, object]:
        low, high, digits = self.bin_range()
        return {"low": low, "high": high, "digits": digits, "count": int(high) - int(low) + 1,
                "old": self.old, "new": self.new}


def destination(candidates: tuple[RouteEntry, ...]) -> str:
    """`bank-b [currencies=978] else bank-a (fallback bank-c)`, or `no route`: the candidates a
    full-length PAN can reach (up to the first unconditional one)."""
    parts = []
    for entry in candidates:
        fallback = f" (fallback {entry.fallback})" if entry.fallback else ""
        conditions = f" [{entry.conditions}]" if entry.conditions else ""
        parts.append(f"{entry.issuer}{fallback}{conditions}")
        if entry.conditions is None:
            break
    return " else ".join(parts) or "no route"


def diff_tables(old: RoutingTable, new: RoutingTable) -> list[Change]:
    changes: list[Change] = []
    for start, end, was, now in _aligned(old, new):
        if was == now:
            continue
        if changes and changes[-1].end == start and (changes[-1].old, changes[-1].new) == (was, now):
            changes[-1] = attrs.evolve(changes[-1], end=end)
        else:
            changes.append(Change(start, end, was, now))
    return changes


def _aligned(old: RoutingTable, new: RoutingTable) -> Iterator[tuple[int, int, str, str]]:
    """The space cut at both tables' boundaries, with each table's destination per piece."""
    old_segments, new_segments = old.segments(), new.segments()
    _, old_end, old_candidates = next(old_segments)
    _, new_end, new_candidates = next(new_segments)
    position = 0
    while position < SPACE_END:
        end = min(old_end, new_end)
        yield position, end, destination(old_candidates), destination(new_candidates)
        position = end
        if old_end == end and end < SPACE_END:
            _, old_end, old_candidates = next(old_segments)
        if new_end == end and end < SPACE_END:
            _, new_end, new_candidates = next(new_segments)
