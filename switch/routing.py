"""BIN routing: which issuer serves a card, decided from its PAN (and optionally the transaction).

Every entry is a range of equal-length digit strings (a prefix is the range prefix..prefix).
Entries are compared in one 19-digit space, where a range covers
[low * 10^(19-len), (high + 1) * 10^(19-len)). An entry may also carry conditions on the
transaction (processing code, MTI class, currency) and a fallback issuer for when its own issuer
is unavailable.

Ranking, best first: the narrowest range in the 19-digit space; then the entry with more kinds of
condition (a conditional entry is more specific than an unconditional one over the same range);
then the higher `priority`; then file order. `lookup(pan, context)` returns the best-ranked entry
that matches: its range contains the PAN, the PAN has at least as many digits as the entry, and
its conditions hold for `context`. With `context=None` only unconditional entries match: a caller
that knows nothing about the transaction must not be routed on a guess about it.

Building the table sweeps all entries once and flattens them into disjoint segments, each holding
the few entries that can still win there, in rank order (entries that can never win there are
dropped), so a lookup is one binary search plus, almost always, one candidate check.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right, insort
from contextlib import contextmanager
from typing import Any, Collection, Iterable, Iterator, Sequence

import attrs

from switch.errors import ConfigError

PAN_SPACE_DIGITS = 19
SPACE_END = 10**PAN_SPACE_DIGITS
_SPACE_FIRST = "0" * PAN_SPACE_DIGITS
_SPACE_LAST = "9" * PAN_SPACE_DIGITS
# SCALE[d]: the size in the 19-digit space of one d-digit BIN.
SCALE = tuple(10 ** (PAN_SPACE_DIGITS - d) for d in range(PAN_SPACE_DIGITS + 1))
# Condition keys of a [[routes]] entry, with the digits each value must have.
CONDITIONS = {"processing_codes": 2, "mti_classes": 2, "currencies": 3}
_CONDITION_KEYS = frozenset(CONDITIONS)
ROUTE_KEYS = frozenset({"prefix", "low", "high", "issuer", "priority", "fallback", *CONDITIONS})


def _first_two(value: str | None) -> str | None:
    return None if value is None else value[:2]


@attrs.define
class RouteContext:
    """What the switch knows about a transaction besides the PAN; any part may be unknown (None).

    `processing_code` accepts the whole field 3 and keeps only the transaction type (its first
    two digits), which is what routes; `mti_class` is the MTI's first two digits ("01", "02"...).
    Never changed once made; not attrs.frozen, which costs twice as much to make (one a
    transaction, switch.core.context).
    """

    mti: str | None = None
    processing_code: str | None = attrs.field(default=None, converter=_first_two)
    currency: str | None = None
    mti_class: str | None = attrs.field(init=False, eq=False, repr=False)

    @mti_class.default
    def _mti_class(self) -> str | None:
        return _first_two(self.mti)


@attrs.frozen
class Conditions:
    """What a transaction must look like for an entry to apply; None in a set means "any"."""

    processing_codes: frozenset[str] | None = None
    mti_classes: frozenset[str] | None = None
    currencies: frozenset[str] | None = None

    @property
    def count(self) -> int:
        """How many kinds of condition are set: more kinds rank as more specific."""
        return sum(value is not None for value in self.as_tuple())

    def as_tuple(self) -> tuple[frozenset[str] | None, ...]:
        return (self.processing_codes, self.mti_classes, self.currencies)

    def accepts(self, context: RouteContext | None) -> bool:
        if context is None:
            return False
        return (
            (self.processing_codes is None or context.processing_code in self.processing_codes)
            and (self.mti_classes is None or context.mti_class in self.mti_classes)
            and (self.currencies is None or context.currency in self.currencies)
        )

    def covers(self, other: Conditions | None) -> bool:
        """Whether every transaction `other` accepts is accepted here too."""
        theirs = other.as_tuple() if other is not None else (None, None, None)
        return all(
            mine is None or (their is not None and their <= mine)
            for mine, their in zip(self.as_tuple(), theirs)
        )

    def overlaps(self, other: Conditions | None) -> bool:
        """Whether some transaction is accepted by both."""
        if other is None:
            return True
        return all(
            mine is None or their is None or not mine.isdisjoint(their)
            for mine, their in zip(self.as_tuple(), other.as_tuple())
        )

    def __str__(self) -> str:
        return " ".join(
            f"{key}={','.join(sorted(value))}" for key, value in zip(CONDITIONS, self.as_tuple()) if value is not None
        )


@attrs.frozen
class RouteEntry:
    """One `[[routes]]` entry. `fallback` is the issuer to use when `issuer` is unavailable;
    `conditions` None means the entry applies to every transaction.

    Deliberately small: a table may hold a million of these, so the positions in the 19-digit
    space are computed on demand (properties) or in bulk by the table build, not stored."""

    issuer: str
    low: str
    high: str
    priority: int = 0
    source: str = ""  # where the entry was defined, e.g. "routes[3]", for messages
    fallback: str | None = None
    conditions: Conditions | None = None
    line: int | None = attrs.field(default=None, eq=False)

    @property
    def digits(self) -> int:
        return len(self.low)

    @property
    def start(self) -> int:
        return int(self.low) * SCALE[len(self.low)]

    @property
    def end(self) -> int:
        """Exclusive end in the 19-digit space."""
        return (int(self.high) + 1) * SCALE[len(self.low)]

    @property
    def width(self) -> int:
        if self.low == self.high:
            return SCALE[len(self.low)]
        return (int(self.high) + 1 - int(self.low)) * SCALE[len(self.low)]

    @property
    def condition_count(self) -> int:
        return self.conditions.count if self.conditions else 0

    def accepts(self, context: RouteContext | None) -> bool:
        """Whether the entry's conditions hold (range and PAN length are the table's business)."""
        return self.conditions is None or self.conditions.accepts(context)

    def covers(self, other: RouteEntry) -> bool:
        """Whether this entry matches every PAN and transaction `other` matches where both
        ranges meet: then `other` can never win against it there."""
        if len(self.low) > len(other.low):
            return False
        return self.conditions is None or self.conditions.covers(other.conditions)

    def span(self) -> str:
        return self.low if self.low == self.high else f"{self.low}-{self.high}"

    def where(self) -> str:
        """`routes[3] (line 14)`: how messages name the entry."""
        name = self.source or "entry"
        return f"{name} (line {self.line})" if self.line else name

    def describe(self) -> str:
        extra = f", {self.conditions}" if self.conditions else ""
        fallback = f", fallback {self.fallback}" if self.fallback else ""
        return f"{self.where()} {self.span()} -> {self.issuer} (priority {self.priority}{extra}{fallback})"


class RoutingTable:
    """An immutable BIN table; `lookup(pan, context)` returns the winning entry or None."""

    def __init__(self, entries: Sequence[RouteEntry]):
        self.entries = tuple(entries)
        with paused_gc():
            self._starts, self._candidates, ties = _flatten(self.entries)
        # Overlapping entries of equal rank, earlier in the file first: only file order decides
        # between them, which `routes check` reports when their issuers differ.
        self.ties = [(self.entries[a], self.entries[b]) for a, b in ties]

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, pan: str, context: RouteContext | None = None) -> RouteEntry | None:
        if not (pan.isascii() and pan.isdigit()):
            return None
        length = len(pan)
        point = pan[:PAN_SPACE_DIGITS].ljust(PAN_SPACE_DIGITS, "0")
        for entry in self._candidates[bisect_right(self._starts, point) - 1]:
            if len(entry.low) <= length and (entry.conditions is None or entry.conditions.accepts(context)):
                return entry
        return None

    @property
    def segment_count(self) -> int:
        return len(self._starts)

    def candidates_at(self, point: int) -> tuple[RouteEntry, ...]:
        """The entries that can win at `point` of the 19-digit space, best first."""
        return self._candidates[bisect_right(self._starts, str(point).zfill(PAN_SPACE_DIGITS)) - 1]

    def segments(self) -> Iterator[tuple[int, int, tuple[RouteEntry, ...]]]:
        """(start, end, candidates) for every segment, covering the whole 19-digit space."""
        starts = [int(start) for start in self._starts]
        return zip(starts, starts[1:] + [SPACE_END], self._candidates)

    def reaches(self, low: str, high: str) -> bool:
        """Whether some entry covers part of the range low..high (equal-length digit strings,
        as a risk rule's BIN scope gives them): a card there can be routed, for some PAN length
        or transaction. Segments with no candidate never follow each other, so this looks at
        two segments at most before it finds one that has."""
        first = low.ljust(PAN_SPACE_DIGITS, "0")
        last = high.ljust(PAN_SPACE_DIGITS, "9")
        index = bisect_right(self._starts, first) - 1
        while index < len(self._starts) and self._starts[index] <= last:
            if self._candidates[index]:
                return True
            index += 1
        return False

    def live_entries(self) -> list[RouteEntry]:
        """Entries that win somewhere, for some PAN length and transaction; the rest are dead."""
        return list({id(entry): entry for candidates in self._candidates for entry in candidates}.values())

    @property
    def issuers(self) -> set[str]:
        return {entry.issuer for entry in self.entries}


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while building big tables: they allocate millions of
    tuples, none in a cycle, and the collector's repeated scans of them are a large share of a
    big build (see docs/performance.md, "Routing table builds"). The previous state is
    restored (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _flatten(entries: Sequence[RouteEntry]) -> tuple[list[str], list[tuple[RouteEntry, ...]], list[tuple[int, int]]]:
    """Disjoint segment starts (as 19-digit strings; the first is all zeros), each segment's
    viable candidates, and the ties: pairs of indices of overlapping entries of equal rank
    (found where the sweep already holds both, so checking for conflicts costs nothing extra;
    in a group of three or more, each entry is paired at least with its neighbour in rank).

    One sweep over the range boundaries keeps the covering entries' rank keys in a sorted list;
    most segments have one entry. Positions are 19-digit strings, not ints: a PAN padded to 19
    digits compares with them directly, and Python sorts and compares equal-length strings much
    faster than 64-bit ints. This function is what a million-entry load waits on."""
    count = len(entries)
    # Read every entry once, in file order (sequential memory), then permute only these lists
    # into range-start order: on a million entries, touching objects at random costs more
    # than sorting.
    firsts = [entry.low.ljust(PAN_SPACE_DIGITS, "0") for entry in entries]
    lasts = [entry.high.ljust(PAN_SPACE_DIGITS, "9") for entry in entries]
    keys = [_rank_key(entry, index) for index, entry in enumerate(entries)]
    order = sorted(range(count), key=firsts.__getitem__)
    firsts = [firsts[index] for index in order]
    lasts = [lasts[index] for index in order]
    keys = [keys[index] for index in order]
    by_last = sorted(range(count), key=lasts.__getitem__)  # nearly sorted already: cheap
    segment_starts = [_SPACE_FIRST]
    candidates: list[tuple[RouteEntry, ...]] = [()]
    last_viable: tuple[tuple[int, int, int, int], ...] = ()
    ties: set[tuple[int, int]] = set()
    active: list[tuple[int, int, int, int]] = []
    i = j = 0
    while j < count:
        ending = lasts[by_last[j]]
        if i < count and firsts[i] <= ending:
            point = firsts[i]
        else:
            while j < count and lasts[by_last[j]] == ending:
                del active[bisect_left(active, keys[by_last[j]])]
                j += 1
            if ending == _SPACE_LAST:
                break
            point = str(int(ending) + 1).zfill(PAN_SPACE_DIGITS)
        while i < count and firsts[i] == point:
            insort(active, keys[i])
            i += 1
        if len(active) < 2:
            viable = tuple(active)
        else:
            viable = _viable(entries, active)
            for position in range(1, len(active)):
                better, worse = active[position - 1], active[position]
                if better[0] == worse[0] and better[1] == worse[1] and better[2] == worse[2]:
                    ties.add((better[3], worse[3]))
        if viable == last_viable:
            continue
        last_viable = viable
        if point == _SPACE_FIRST:
            segment_starts.pop()
            candidates.pop()
        segment_starts.append(point)
        if len(viable) == 1:
            candidates.append((entries[viable[0][3]],))
        else:
            candidates.append(tuple([entries[key[3]] for key in viable]))
    return segment_starts, candidates, sorted(ties)


def rank(entry: RouteEntry) -> tuple[int, int, int]:
    """Sorts best first: narrowest range, most kinds of condition, highest priority (a stable
    sort of entries in file order then keeps file order last, as lookup does)."""
    return (entry.width, -entry.condition_count, -entry.priority)


def _rank_key(entry: RouteEntry, index: int) -> tuple[int, int, int, int]:
    return (entry.width, -entry.condition_count, -entry.priority, index)


def _viable(entries: Sequence[RouteEntry], active: list[tuple[int, int, int, int]]) -> tuple:
    """Active rank keys, best first, without those of entries a better one always beats.
    (Called for every nested segment, hence plain loops.)"""
    kept: list[tuple[int, int, int, int]] = []
    kept_entries: list[RouteEntry] = []
    for key in active:
        entry = entries[key[3]]
        for better in kept_entries:
            if better.covers(entry):
                break
        else:
            kept.append(key)
            kept_entries.append(entry)
    return tuple(kept)


def _digits(file: object, where: str, key: str, value: Any) -> str:
    """(Keys are built only for the message: this runs twice per entry of a million.)"""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or not 1 <= len(value) <= PAN_SPACE_DIGITS:
        raise ConfigError(file, f"{where}.{key}", f"a string of 1 to {PAN_SPACE_DIGITS} digits")
    return value


def _condition(file: object, key: str, value: Any, digits: int) -> frozenset[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.isascii() and v.isdigit() and len(v) == digits for v in value)
    ):
        raise ConfigError(file, key, f"a non-empty array of {digits}-digit strings")
    return frozenset(value)


def parse_route(
    file: object, index: int, raw: Any, issuers: Collection[str] | None, line: int | None = None
) -> RouteEntry:
    """One `[[routes]]` table into an entry; errors name the file (and line when known), the
    entry and the key. `issuers`, when given, are the names `issuer` and `fallback` may use."""
    try:
        return _parse_route(file, f"routes[{index}]", raw, issuers, line)
    except ConfigError as exc:
        if not line:
            raise
        raise ConfigError(f"{file}:{line}", exc.key, exc.expected) from None


def _parse_route(file: object, where: str, raw: Any, issuers: Collection[str] | None, line: int | None) -> RouteEntry:
    if not isinstance(raw, dict):
        raise ConfigError(file, where, "a table with prefix or low/high, and issuer")
    if not ROUTE_KEYS.issuperset(raw):
        unknown = sorted(raw.keys() - ROUTE_KEYS)[0]
        raise ConfigError(file, f"{where}.{unknown}", f"one of {', '.join(sorted(ROUTE_KEYS))}")
    if "prefix" in raw:
        if "low" in raw or "high" in raw:
            raise ConfigError(file, where, "either prefix or low/high, not both")
        low = high = _digits(file, where, "prefix", raw["prefix"])
    elif "low" in raw and "high" in raw:
        low = _digits(file, where, "low", raw["low"])
        high = _digits(file, where, "high", raw["high"])
        if len(low) != len(high):
            raise ConfigError(file, f"{where}.high", f"as many digits as low ({len(low)})")
        if low > high:
            raise ConfigError(file, f"{where}.high", "a value not below low")
    else:
        raise ConfigError(file, where, "prefix, or both low and high")
    issuer = _issuer(file, where, "issuer", raw.get("issuer"), issuers)
    fallback = _issuer(file, where, "fallback", raw["fallback"], issuers) if "fallback" in raw else None
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ConfigError(file, f"{where}.priority", "an integer")
    conditions = None
    if not _CONDITION_KEYS.isdisjoint(raw):
        conditions = Conditions(*(
            _condition(file, f"{where}.{key}", raw[key], digits) if key in raw else None
            for key, digits in CONDITIONS.items()
        ))
    return RouteEntry(issuer, low, high, priority, where, fallback, conditions, line)


def _issuer(file: object, where: str, key: str, name: Any, issuers: Collection[str] | None) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(file, f"{where}.{key}", "the name of an issuer")
    if issuers is not None and name not in issuers:
        raise ConfigError(file, f"{where}.{key}", f"one of the defined issuers ({', '.join(sorted(issuers))})")
    return name


def parse_routes(
    file: object, raw: Any, issuers: Iterable[str] | None = None, lines: Sequence[int] | None = None
) -> RoutingTable:
    """The `routes` array of a config or routes file into a table; raises on the first bad entry.
    `lines[i]`, when given, is the line of the i-th `[[routes]]` header, for messages."""
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConfigError(file, "routes", "an array of tables ([[routes]])")
    known = set(issuers) if issuers is not None else None
    return RoutingTable(
        [parse_route(file, i, entry, known, lines[i] if lines else None) for i, entry in enumerate(raw)]
    )
