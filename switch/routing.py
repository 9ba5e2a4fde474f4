"""BIN routing: which issuer serves a card, decided from its PAN alone.

Every entry is a range of equal-length digit strings (a prefix is the range prefix..prefix).
Entries are compared in one 19-digit space, where a range covers
[low * 10^(19-len), (high + 1) * 10^(19-len)). The most specific entry is the one covering the
fewest PANs there; a higher `priority` breaks ties, then file order.

Building the table sweeps all entries once and flattens them into disjoint segments, each
labelled with its winning entry, so a lookup is one binary search however many entries overlap.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from typing import Any, Iterable, Sequence

import attrs

from switch.errors import ConfigError

PAN_SPACE_DIGITS = 19


@attrs.frozen
class RouteEntry:
    issuer: str
    low: str
    high: str
    priority: int = 0
    source: str = ""  # where the entry was defined, e.g. "routes[3]", for messages

    @property
    def digits(self) -> int:
        return len(self.low)

    @property
    def start(self) -> int:
        return int(self.low) * 10 ** (PAN_SPACE_DIGITS - self.digits)

    @property
    def end(self) -> int:
        """Exclusive end in the 19-digit space."""
        return (int(self.high) + 1) * 10 ** (PAN_SPACE_DIGITS - self.digits)

    def describe(self) -> str:
        span = self.low if self.low == self.high else f"{self.low}-{self.high}"
        return f"{self.source or 'entry'} {span} -> {self.issuer} (priority {self.priority})"


class RoutingTable:
    """An immutable BIN table; `lookup(pan)` returns the winning entry or None."""

    def __init__(self, entries: Sequence[RouteEntry]):
        self.entries = tuple(entries)
        self._starts, self._winners = _flatten(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, pan: str) -> RouteEntry | None:
        if not pan.isdigit():
            return None
        point = int(pan[:PAN_SPACE_DIGITS].ljust(PAN_SPACE_DIGITS, "0"))
        index = bisect_right(self._starts, point) - 1
        if index < 0:
            return None
        winner = self._winners[index]
        if winner < 0:
            return None
        entry = self.entries[winner]
        return entry if len(pan) >= entry.digits else None

    @property
    def issuers(self) -> set[str]:
        return {entry.issuer for entry in self.entries}


def _flatten(entries: Sequence[RouteEntry]) -> tuple[list[int], list[int]]:
    """Disjoint segment starts and the index of the entry winning each (-1: none)."""
    order = sorted(range(len(entries)), key=lambda i: entries[i].start)
    bounds = [(entries[i].start, entries[i].end) for i in range(len(entries))]
    points = sorted({p for bound in bounds for p in bound})
    active: list[tuple[int, int, int, int]] = []  # (width, -priority, index, end)
    starts: list[int] = []
    winners: list[int] = []
    cursor = 0
    for point in points:
        while cursor < len(order) and bounds[order[cursor]][0] <= point:
            i = order[cursor]
            start, end = bounds[i]
            heapq.heappush(active, (end - start, -entries[i].priority, i, end))
            cursor += 1
        while active and active[0][3] <= point:
            heapq.heappop(active)
        winner = active[0][2] if active else -1
        if not winners or winners[-1] != winner:
            starts.append(point)
            winners.append(winner)
    return starts, winners


def _digits(file: object, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.isdigit() or not 1 <= len(value) <= PAN_SPACE_DIGITS:
        raise ConfigError(file, key, f"a string of 1 to {PAN_SPACE_DIGITS} digits")
    return value


def parse_route(file: object, index: int, raw: Any, issuers: Iterable[str] | None) -> RouteEntry:
    """One `[[routes]]` table into an entry; errors name the entry and key."""
    where = f"routes[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(file, where, "a table with prefix or low/high, and issuer")
    unknown = set(raw) - {"prefix", "low", "high", "issuer", "priority"}
    if unknown:
        raise ConfigError(file, f"{where}.{sorted(unknown)[0]}", "one of prefix, low, high, issuer, priority")
    if "prefix" in raw:
        if "low" in raw or "high" in raw:
            raise ConfigError(file, where, "either prefix or low/high, not both")
        low = high = _digits(file, f"{where}.prefix", raw["prefix"])
    elif "low" in raw and "high" in raw:
        low = _digits(file, f"{where}.low", raw["low"])
        high = _digits(file, f"{where}.high", raw["high"])
        if len(low) != len(high):
            raise ConfigError(file, f"{where}.high", f"as many digits as low ({len(low)})")
        if int(low) > int(high):
            raise ConfigError(file, f"{where}.high", "a value not below low")
    else:
        raise ConfigError(file, where, "prefix, or both low and high")
    issuer = raw.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise ConfigError(file, f"{where}.issuer", "the name of an issuer")
    if issuers is not None and issuer not in issuers:
        raise ConfigError(file, f"{where}.issuer", f"one of the defined issuers ({', '.join(sorted(issuers))})")
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ConfigError(file, f"{where}.priority", "an integer")
    return RouteEntry(issuer=issuer, low=low, high=high, priority=priority, source=where)


def parse_routes(file: object, raw: Any, issuers: Iterable[str] | None = None) -> RoutingTable:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConfigError(file, "routes", "an array of tables ([[routes]])")
    known = set(issuers) if issuers is not None else None
    return RoutingTable([parse_route(file, i, entry, known) for i, entry in enumerate(raw)])
