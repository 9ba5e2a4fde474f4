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
from operator import attrgetter
from typing import Hashable


# ONE_WALK: a plain dict whose oldest keys are dropped (token buckets, last-seen notes) finds
# them in one walk from its front, then deletes them. A dict's iteration starts by stepping
# over every slot that deleted keys left in front of its first live key, so reading the first
# key afresh for each key dropped (a `for ... break` per key) walked those slots once per key.

class Totals:
    """A key's count and amount of the events within its window (a velocity rule's memory of
    one card, terminal or merchant)."""

    __slots__ = ("count", "amount")

    count: int
    amount: int  # minor units: field 4 is at most 12 digits, so 64 bits hold millions of them


class Event:
    """One counted request: `counted` while it is in its key's totals, False once it has
    expired or been retracted (declined).

    Slots and no __init__ (`add` fills them): one is made for every velocity rule a request is
    counted in, and lives as long as the window. It holds plain values only (its totals are
    found by its key, its window is named beside it in a reservation: `count`), so where this
    module is compiled (windows.pxd) it is a C struct the cyclic collector never tracks: the
    collector's passes over every live event were a tenth of the risk stage's instructions. As
    Python it costs a little more than a list would."""

    __slots__ = ("at", "amount", "key", "counted")

    at: float
    amount: int
    key: Hashable
    counted: bool


# A request's count in one window, held until settle keeps or takes it back (`count`).
Reservation = tuple["SlidingTotals", Event]

_at = attrgetter("at")


class SlidingTotals:
    """Per key: how many events, and their amounts, within the last `span` seconds.

    Every key's events sit in one queue, oldest first: one span for all of them, so expiring
    walks only the front of that queue (a list read from `_head`, its expired front cut off
    once it is the larger part). Events come in time order but for one case: the counts
    another instance shares are replayed at the times they happened, behind newer ones, and go
    to their place in the queue (a rare insertion, so that they leave the window on time). A
    key is its Totals, dropped when its last event leaves: no queue per key,
    no order of keys to keep (a key per request is what this structure mostly sees: a card
    twice an hour against windows of minutes). A velocity rule's limits (`max_count`,
    `max_amount`, infinite when the rule has none) are the window's, so that a request is
    counted and judged in one call (`count`)."""

    def __init__(self, span: float, name: str = "", max_count: float = math.inf,
                 max_amount: float = math.inf) -> None:
        self.span = span
        self.name = name  # the rule it counts for (what a request's reservations are journaled as)
        self.max_count = max_count
        self.max_amount = max_amount
        self._keys: dict[Hashable, Totals] = {}  # key -> the totals of its events in the window
        self._events: list[Event] = []  # every key's events, by when they were added, from `_head`
        self._head = 0
        self.latest: float = -math.inf  # the newest time an event was queued at (never lowered)

    def __len__(self) -> int:
        return len(self._keys)

    def totals(self, key: Hashable, now: float) -> tuple[int, int]:
        self.forget(now)
        totals = self._keys.get(key)
        return (totals.count, totals.amount) if totals is not None else (0, 0)

    def add(self, key: Hashable, now: float, amount: int) -> Event:
        """Count an event. Its key's totals may still hold events that have left the window:
        what has passed is dropped by `forget` (`totals` calls it), so a caller whose limit the
        totals pass calls it and looks again (`count`). Most requests are within their limits,
        and dropping in the sweep's batches costs a fraction of a look per add. An event older
        than the newest ever queued goes to its place (`place`)."""
        keys = self._keys
        totals = keys.get(key)
        if totals is None:
            totals = keys[key] = Totals.__new__(Totals)
            totals.count = 1
            totals.amount = amount
        else:
            totals.count += 1
            totals.amount += amount
        event = Event.__new__(Event)
        event.at = now
        event.amount = amount
        event.key = key
        event.counted = True
        if now < self.latest:  # a count shared from another instance, behind newer ones
            self.place(event)
        else:
            self._events.append(event)
            self.latest = now
        return event

    def count(self, key: Hashable, now: float, amount: int, reserved: list[Reservation]) -> Event | None:
        """Count a request's event and reserve it (appended to `reserved` with this window,
        kept or taken back at settle). With it counted, the key's totals beyond a limit make
        this request the one too many: then its event is returned, once the exact totals (what
        has passed dropped) are beyond it too; None otherwise, as for most requests."""
        event = self.add(key, now, amount)
        reserved.append((self, event))
        totals = self._keys[key]
        if totals.count > self.max_count or totals.amount > self.max_amount:
            self.forget(now)
            if totals.count > self.max_count or totals.amount > self.max_amount:
                return event
        return None

    def place(self, event: Event) -> None:
        """Queue an event behind newer ones (a count another instance shares, replayed at the
        time it happened) in its place, so that it leaves the window on time."""
        events = self._events
        events.insert(bisect.bisect_right(events, event.at, self._head, key=_at), event)

    def forget(self, now: float) -> None:
        """Drop what has left the window: for exact totals, and in the engine's sweep."""
        events = self._events
        if self._head < len(events) and events[self._head].at <= now - self.span:
            self._expire(now - self.span)

    def retract(self, event: Event) -> None:
        """Take back an event added (a reservation freed): it counts no more."""
        if not event.counted:
            return
        event.counted = False
        totals = self._keys[event.key]
        totals.count -= 1
        totals.amount -= event.amount
        if not totals.count:
            del self._keys[event.key]
        events = self._events
        if len(events) > self._head and events[-1] is event:  # taken back at once (a decline)
            events.pop()

    def _expire(self, horizon: float) -> None:
        events, keys = self._events, self._keys
        head, end = self._head, len(events)
        while head < end and events[head].at <= horizon:
            event = events[head]
            head += 1
            if event.counted:
                event.counted = False
                totals = keys[event.key]
                totals.count -= 1
                totals.amount -= event.amount
                if not totals.count:
                    del keys[event.key]
        if head * 2 > end:  # what has expired is the larger part: cut it off (amortised, one move)
            del events[:head]
            head = 0
        self._head = head


class DistinctWindow:
    """Per key: how many distinct values (cards) within the last `span` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self._keys: OrderedDict[Hashable, tuple[deque[tuple[float, str]], Counter[str]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable, now: float, value: str) -> int:
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

    def clear(self, key: Hashable) -> None:
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


class Cooldowns:
    """Keys barred for `length` seconds from when their cool-down starts; a key is forgotten
    once it has passed. One length for all keys, so the order they start in is the order they end."""

    def __init__(self, length: float) -> None:
        self.length = length
        self.until: OrderedDict[Hashable, float] = OrderedDict()  # key -> when its cool-down ends, empty mostly

    def __len__(self) -> int:
        return len(self.until)

    def start(self, key: Hashable, now: float) -> float:
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

    def active(self, key: Hashable, now: float) -> float | None:
        """When `key`'s cool-down ends, if it is cooling down at `now`."""
        if self.until:  # mostly none: no call to forget
            self.forget(now)
        until = self.until.get(key)
        return until if until is not None and until > now else None


class TokenBuckets:
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
        self._due: dict[Hashable, float] = {}  # key -> when its bucket is full again, by last take

    def __len__(self) -> int:
        return len(self._due)

    def take(self, key: Hashable, now: float) -> bool:
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


class LastSeen:
    """Per key, the last value noted and when (`last`), for `span` seconds: a reader takes one
    older than that for none, so only the sweep (`forget`) drops them; keys are in the order
    they were noted."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.last: dict[Hashable, tuple[str, float]] = {}  # key -> (value, when), by when noted

    def __len__(self) -> int:
        return len(self.last)

    def note(self, key: Hashable, value: str, now: float) -> None:
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
