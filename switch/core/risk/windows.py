"""The memory of risk rules: sliding windows that forget, token buckets, cool-downs.

Every structure is keyed (a card's PAN hash, a terminal, a merchant, a connection) and keeps a
key only while it has something to say: events older than the window are dropped as time
passes, and keys with nothing left are dropped, oldest first, when `forget(now)` is called (the
engine sweeps every structure every 10 s) and, for the distinct windows and cool-downs, whenever
one is touched; sliding totals drop them when a key's totals reach its rule's limit. A token
bucket that is full again, or a last-seen note past its span, answers as an absent key, so
those wait for the sweep. Memory is bounded by the traffic within the windows
(and the sweep's interval), never by the number of cards ever seen. Time is the caller's
(seconds on one monotonic clock).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, OrderedDict, deque
from operator import itemgetter
from typing import Any, Callable, Generic, Hashable, TypeVar

from switch.core.risk.generated import Code

K = TypeVar("K", bound=Hashable)

# ONE_WALK: a plain dict whose oldest keys are dropped (token buckets, last-seen notes) finds
# them in one walk from its front, then deletes them. A dict's iteration starts by stepping
# over every slot that deleted keys left in front of its first live key, so reading the first
# key afresh for each key dropped (a `for ... break` per key) walked those slots once per key.

# One counted request: [at, amount, totals, key, window]. `totals` is its key's [count, amount]
# while the event counts in them, None once it has expired or been retracted (declined): right
# after `add`, `event[TOTALS]` is the key's totals with this event counted (a caller that adds
# first and decides after looks the key up once). `window` is the SlidingTotals it is in, so
# that a reservation is the event alone. A list, not a class: one is made for every velocity
# rule a request is counted in, and a list costs a sixth as much.
Event = list
_AT, _AMOUNT, TOTALS, _KEY, WINDOW = 0, 1, 2, 3, 4
_at = itemgetter(_AT)


class SlidingTotals(Generic[K]):
    """Per key: how many events, and their amounts, within the last `span` seconds.

    Every key's events sit in one queue, oldest first: one span for all of them, so expiring
    walks only the front of that queue. Events come in time order but for one case: the counts
    another instance shares are replayed at the times they happened, behind newer ones, and go
    to their place in the queue (a rare insertion, so that they leave the window on time). A
    key is a plain [count, amount] pair, dropped when its last event leaves: no queue per key,
    no order of keys to keep (a key per request is what this structure mostly sees: a card
    twice an hour against windows of minutes)."""

    def __init__(self, span: float, name: str = "") -> None:
        self.span = span
        self.name = name  # the rule it counts for (what a request's reservations are journaled as)
        # Never rebound: the engine's generated moments hold them (`count_lines`).
        self._keys: dict[K, list[int]] = {}  # key -> [count, amount] of its events in the window
        self._events: deque[Event] = deque()  # every key's events, by when they were added
        self.latest = -math.inf  # the newest time an event was queued at (never lowered)

    def __len__(self) -> int:
        return len(self._keys)

    def totals(self, key: K, now: float) -> tuple[int, int]:
        self.forget(now)
        totals = self._keys.get(key)
        return (totals[0], totals[1]) if totals is not None else (0, 0)

    def add(self, key: K, now: float, amount: int) -> Event:
        """Count an event. Its totals (`event[TOTALS]`) may still hold events of the key that
        have left the window: what has passed is dropped by `forget` (`totals` calls it), so a
        caller whose limit the totals pass calls it and looks again. Most requests are within
        their limits, and dropping in the sweep's batches costs a fraction of a look per add."""
        return _add(self, key, now, amount)

    def count_lines(self, code: Code, key: str) -> list[str]:
        """What `add` does, as lines of a generated function that counts the event of the key
        named `key` (`_count_lines`), this window's parts named in `code`."""
        return _count_lines(code.constant("keys", self._keys), code.constant("events", self._events),
                            code.constant("window", self), key)

    def place(self, event: Event) -> None:
        """Queue an event behind newer ones (a count another instance shares, replayed at the
        time it happened) in its place, so that it leaves the window on time."""
        events = self._events
        events.insert(bisect.bisect_right(events, event[_AT], key=_at), event)

    def forget(self, now: float) -> None:
        """Drop what has left the window: for exact totals, and in the engine's sweep."""
        events = self._events
        if events and events[0][_AT] <= now - self.span:
            self._expire(now - self.span)

    def retract(self, event: Event) -> None:
        """Take back an event added (a reservation freed): it counts no more."""
        totals: list[int] | None = event[TOTALS]
        if totals is None:
            return
        event[TOTALS] = None
        totals[0] -= 1
        totals[1] -= event[_AMOUNT]
        if not totals[0]:
            del self._keys[event[_KEY]]
        if self._events[-1] is event:  # taken back at once (a decline): nothing to keep
            self._events.pop()

    def _expire(self, horizon: float) -> None:
        events, keys = self._events, self._keys
        while events and events[0][_AT] <= horizon:
            event = events.popleft()
            totals = event[TOTALS]
            if totals is not None:
                event[TOTALS] = None
                totals[0] -= 1
                totals[1] -= event[_AMOUNT]
                if not totals[0]:
                    del keys[event[_KEY]]


def _count_lines(keys: str, events: str, window: str, key: str) -> list[str]:
    """How an event is counted, over the names given for a SlidingTotals' dict of totals, its
    queue, the window itself and the key, and `now` and `amount`: the event is left in `event`,
    its key's totals, this event counted, in `totals`. An event older than the newest ever queued
    goes to its place (`place`, which appends it when nothing left in the queue is newer: so
    `latest` need not come down with retractions and expiry, and the queue is not read). Written once, run twice: as `add`, and
    inline in the engine's generated moments, once per velocity rule (a call for each rule in
    scope cost about a twentieth of a request with 20 rules)."""
    return [f"totals = {keys}.get({key})",
            "if totals is None:",
            f"    totals = {keys}[{key}] = [1, amount]",
            "else:",
            "    totals[0] += 1",
            "    totals[1] += amount",
            f"event = [now, amount, totals, {key}, {window}]  # Event: at, amount, totals, key, window",
            f"if now < {window}.latest:  # a count shared from another instance, behind newer ones",
            f"    {window}.place(event)",
            "else:",
            f"    {events}.append(event)",
            f"    {window}.latest = now"]


def _add_function() -> Callable[[SlidingTotals[Any], Any, float, int], Event]:
    code = Code()
    code.add(*_count_lines("window._keys", "window._events", "window", "key"), "return event")
    add: Callable[[SlidingTotals[Any], Any, float, int], Event] = code.function("add", "window, key, now, amount")
    return add


_add = _add_function()


class DistinctWindow(Generic[K]):
    """Per key: how many distinct values (cards) within the last `span` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self._keys: OrderedDict[K, tuple[deque[tuple[float, str]], Counter[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K, now: float, value: str) -> int:
        """Note `value` for `key`; returns the distinct values within the window, this one included."""
        entry = self._keys.get(key)
        if entry is None:
            entry = self._keys[key] = (deque(), Counter())
        else:
            self._keys.move_to_end(key)
        seen, counts = entry
        horizon = now - self.span
        while seen and seen[0][0] <= horizon:
            _, old = seen.popleft()
            counts[old] -= 1
            if not counts[old]:
                del counts[old]
        seen.append((now, value))
        counts[value] += 1
        self.forget(now)
        return len(counts)

    def clear(self, key: K) -> None:
        self._keys.pop(key, None)

    def forget(self, now: float) -> None:
        horizon = now - self.span
        keys = self._keys
        while keys:
            for key in keys:  # the least recently added
                break
            seen = keys[key][0]
            if seen and seen[-1][0] > horizon:
                return
            del keys[key]


class Cooldowns(Generic[K]):
    """Keys barred for `length` seconds from when their cool-down starts; a key is forgotten
    once it has passed. One length for all keys, so the order they start in is the order they end."""

    def __init__(self, length: float) -> None:
        self.length = length
        self.until: OrderedDict[K, float] = OrderedDict()  # key -> when its cool-down ends, empty mostly

    def __len__(self) -> int:
        return len(self.until)

    def start(self, key: K, now: float) -> float:
        """Bar `key` from `now`; returns when it ends."""
        self.until.pop(key, None)
        until = self.until[key] = now + self.length
        return until

    def forget(self, now: float) -> None:
        until = self.until
        while until:
            for key in until:  # the first, without building an iterator of items
                break
            if until[key] > now:
                return
            del until[key]

    def active(self, key: K, now: float) -> float | None:
        """When `key`'s cool-down ends, if it is cooling down at `now`."""
        if self.until:  # mostly none: no call to forget
            self.forget(now)
        until = self.until.get(key)
        return until if until is not None and until > now else None


class TokenBuckets(Generic[K]):
    """Per key, a bucket of `burst` tokens refilled at `rate` a second; a full bucket is
    forgotten (it is the same as a new one).

    Kept as one float per key (the generic cell rate algorithm): `due`, when the bucket will
    be full again. A bucket's tokens at `now` are burst - (due - now) * rate, capped at burst,
    so it has a token when due - now <= (burst - 1) / rate, and taking one moves `due` a
    token's time (1 / rate) later. The same decisions as counting tokens, up to float
    rounding, with no refill to compute and no pair to update. A full bucket answers as an
    absent one, so only the sweep (`forget`) drops them: keys are in the order of their last
    take, and a bucket is full at most burst / rate seconds after it."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.interval = 1 / rate  # a token's time
        self.tolerance = (burst - 1) / rate  # how far `due` may be ahead of now for a take
        self._due: dict[K, float] = {}  # key -> when its bucket is full again, by last take

    def __len__(self) -> int:
        return len(self._due)

    def take(self, key: K, now: float) -> bool:
        """One token for `key`, if it has one."""
        dues = self._due
        due = dues.pop(key, now)  # put back last: the order of last takes
        if due < now:
            due = now  # full: as a new bucket
        if due - now > self.tolerance:
            dues[key] = due
            return False
        dues[key] = due + self.interval
        return True

    def forget(self, now: float) -> None:
        """Drop the buckets full again by `now`, least recently used first, up to one that is
        not: those behind it were used later, so each is dropped by the first sweep after it
        is full (burst / rate after its last take, at most)."""
        dues = self._due
        full = []
        for key, due in dues.items():  # one walk, then the deletions (ONE_WALK)
            if due > now:
                break
            full.append(key)
        for key in full:
            del dues[key]


class LastSeen(Generic[K]):
    """Per key, the last value noted and when (`last`), for `span` seconds: a reader takes one
    older than that for none, so only the sweep (`forget`) drops them; keys are in the order
    they were noted."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.last: dict[K, tuple[str, float]] = {}  # key -> (value, when), by when noted

    def __len__(self) -> int:
        return len(self.last)

    def note(self, key: K, value: str, now: float) -> None:
        last = self.last
        last.pop(key, None)  # put back last: the order of notes
        last[key] = (value, now)

    def forget(self, now: float) -> None:
        last, span = self.last, self.span
        passed = []
        for key, (_, when) in last.items():  # one walk, then the deletions (ONE_WALK)
            if now - when < span:
                break
            passed.append(key)
        for key in passed:
            del last[key]
