"""The duplicate window: recent transactions in memory, how the switch recognises duplicates and
reversal originals.

The journal is the record; this is the index the hot path consults without touching the disk.
Retransmissions are recognised within the duplicate window; reversal originals are looked up
here first and in the journal when they are older than what memory holds.
"""

from __future__ import annotations

import collections

from switch.core.txn import Txn

REVERSIBLE_MTIS = ("0100", "0200")


# The window is kept as this many spans (buckets), each with dictionaries of its own.
BUCKETS = 8
MIN_SPAN = 1.0  # seconds; a window of 0 keeps only what is in flight, swept once a second
# Entries of buckets that have left, freed per transaction added: twice the arrival rate, so a
# bucket is gone well before the next one leaves.
FREED_PER_ADD = 2


class _Bucket:
    """The transactions added during one span of the window, indexed three ways."""

    __slots__ = ("started", "newest", "txns", "by_key", "originals", "by_rrn")

    def __init__(self, started: float):
        self.started = started
        self.newest = started  # the latest `seen` in the bucket: it expires after that
        self.txns: list[Txn] = []
        self.by_key: dict[tuple[str, str, str], Txn] = {}
        self.originals: dict[tuple[str, str, str, str], Txn] = {}
        self.by_rrn: dict[tuple[str, str, int], Txn] = {}

    def add(self, txn: Txn) -> None:
        """Index `txn` (newest so far in the bucket)."""
        self.txns.append(txn)
        self.by_key[(txn.tid, txn.stan, txn.transmitted)] = txn
        if txn.mti in REVERSIBLE_MTIS:
            self.originals[(txn.tid, txn.mti, txn.stan, txn.transmitted)] = txn
            if txn.rrn:
                self.by_rrn[(txn.rrn, txn.tid, txn.amount)] = txn
        if txn.seen > self.newest:
            self.newest = txn.seen

    def forget(self, txn: Txn) -> None:
        """Drop whatever the bucket holds under `txn`'s keys."""
        self.by_key.pop((txn.tid, txn.stan, txn.transmitted), None)
        if txn.mti in REVERSIBLE_MTIS:
            self.originals.pop((txn.tid, txn.mti, txn.stan, txn.transmitted), None)
            if txn.rrn:
                self.by_rrn.pop((txn.rrn, txn.tid, txn.amount), None)

    def free(self, count: int) -> bool:
        """Let go of up to `count` entries (dictionaries keep their size when emptied, so this
        never rebuilds one); True once the bucket is empty."""
        txns, by_key, originals, by_rrn = self.txns, self.by_key, self.originals, self.by_rrn
        for _ in range(count):
            if txns:
                txns.pop()
            if by_key:
                by_key.popitem()
            if originals:
                originals.popitem()
            if by_rrn:
                by_rrn.popitem()
        return not (txns or by_key or originals or by_rrn)


class DuplicateWindow:
    """The duplicate window in memory. Entries leave when they are older than the window or
    beyond `capacity`; reversals of older originals find them in the journal.

    The window is a queue of buckets, one per eighth of it, each with its own dictionaries,
    and leaves a bucket at a time. One dictionary for the whole window (hundreds of thousands
    of entries, the oldest deleted as the newest arrive) rebuilds its table every so often
    while the event loop waits, a stall of tens of milliseconds. A bucket's dictionaries are an
    eighth of that size and never see a deletion while they are searched. A bucket that leaves
    is taken apart a few entries per transaction added, since freeing its tens of thousands of
    transactions at once is a stall of its own. Lookups ask the buckets newest first, so the
    latest transaction with a key wins. The stalls, measured: see docs/performance.md, "Ten
    minutes and beyond: the duplicate window"."""

    def __init__(self, window: float, capacity: int = 1_000_000):
        self.window = window
        self.capacity = capacity
        self._span = max(window / BUCKETS, MIN_SPAN)
        self._bucket_capacity = max(1, capacity // BUCKETS)
        self._buckets: collections.deque[_Bucket] = collections.deque()  # oldest first
        self._size = 0  # transactions in the buckets
        # Still in flight when their bucket left: a reversal must be able to wait for them.
        self._lingering = _Bucket(0.0)
        self._leaving: collections.deque[_Bucket] = collections.deque()  # left, being freed

    def __len__(self) -> int:
        return self._size + len(self._lingering.txns)

    def add(self, txn: Txn) -> None:
        buckets = self._buckets
        current = buckets[-1] if buckets else None
        started = (current is None or txn.seen - current.started >= self._span
                   or len(current.txns) >= self._bucket_capacity)
        newest = _Bucket(txn.seen) if started or current is None else current
        if newest is not current:
            buckets.append(newest)
        newest.add(txn)
        self._size += 1
        if started:
            self._prune(txn.seen)
        leaving = self._leaving
        if leaving and leaving[0].free(FREED_PER_ADD):
            leaving.popleft()

    def previous(self, tid: str, stan: str, transmitted: str, now: float) -> Txn | None:
        """An earlier request with the same terminal, STAN and transmission time, in the window."""
        key = (tid, stan, transmitted)
        for bucket in reversed(self._buckets):
            txn = bucket.by_key.get(key)
            if txn is not None:
                break
        else:
            txn = self._lingering.by_key.get(key)
        if txn is None or now - txn.seen > self.window:
            return None
        return txn

    def original(self, tid: str, mti: str, stan: str, transmitted: str) -> Txn | None:
        key = (tid, mti, stan, transmitted)
        for bucket in reversed(self._buckets):
            txn = bucket.originals.get(key)
            if txn is not None:
                return txn
        return self._lingering.originals.get(key)

    def by_rrn(self, rrn: str, tid: str, amount: int) -> Txn | None:
        key = (rrn, tid, amount)
        for bucket in reversed(self._buckets):
            txn = bucket.by_rrn.get(key)
            if txn is not None:
                return txn
        return self._lingering.by_rrn.get(key)

    def _prune(self, now: float) -> None:
        """When a bucket starts: drop the oldest buckets while all they hold is older than the
        window, or while the window holds more than `capacity` (so it covers between 7/8 of
        `capacity` and all of it); keep what is still in flight (the journal's copy is pending)
        until it finishes."""
        buckets = self._buckets
        horizon = now - self.window
        left = []
        while len(buckets) > 1 and (buckets[0].newest < horizon or self._size > self.capacity):
            old = buckets.popleft()
            self._size -= len(old.txns)
            left.append(old)
            self._leaving.append(old)
        if left or self._lingering.txns:
            self._lingering = self._still_in_flight(self._lingering, left)

    @staticmethod
    def _still_in_flight(lingering: _Bucket, left: list[_Bucket]) -> _Bucket:
        """What lingers from now on: what lingered and is still in flight, as it was indexed,
        then the transactions of the buckets that `left` (oldest first) still in flight, so that
        the newest still wins: a later transaction with the same key that has finished takes its
        older namesake's entries away (the journal has the newest)."""
        kept = _Bucket(0.0)
        kept.txns = [txn for txn in lingering.txns if not txn.finished]
        kept.by_key = {key: txn for key, txn in lingering.by_key.items() if not txn.finished}
        kept.originals = {key: txn for key, txn in lingering.originals.items() if not txn.finished}
        kept.by_rrn = {key: txn for key, txn in lingering.by_rrn.items() if not txn.finished}
        for bucket in left:
            for txn in bucket.txns:
                if not txn.finished:
                    kept.add(txn)
                elif kept.txns:
                    kept.forget(txn)
        return kept
