"""Recent transactions in memory: how the switch recognises duplicates and reversal originals.

The journal is the record; this is the index the hot path consults without touching the disk.
Retransmissions are recognised within the duplicate window; reversal originals are looked up
here first and in the journal when they are older than what memory holds.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs
import trio

from switch.wire.message import Message

REVERSIBLE_MTIS = ("0100", "0200")


@attrs.define(eq=False)
class Txn:
    """One request's life in the switch. `response` is what the terminal got (memory only)."""

    trace: int
    mti: str
    tid: str
    stan: str
    transmitted: str
    rrn: str | None
    amount: int
    pan_hash: str | None
    created: float
    issuer: str | None = None
    state: str = "pending"
    rc: str | None = None
    approval: str | None = None
    forwarded: Message | None = None  # as sent to the issuer: needed to build its reversal
    response: Message | None = None
    reversed_amount: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)

    @property
    def duplicate_key(self) -> tuple[str, str, str]:
        return (self.tid, self.stan, self.transmitted)


class History:
    def __init__(self, window: float, capacity: int = 1_000_000):
        self.window = window
        self.capacity = capacity
        self._by_key: OrderedDict[tuple[str, str, str], Txn] = OrderedDict()
        self._originals: dict[tuple[str, str, str, str], Txn] = {}
        self._by_rrn: dict[tuple[str, str, int], Txn] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, txn: Txn) -> None:
        self._by_key[txn.duplicate_key] = txn
        if txn.mti in REVERSIBLE_MTIS:
            self._originals[(txn.tid, txn.mti, txn.stan, txn.transmitted)] = txn
            if txn.rrn:
                self._by_rrn[(txn.rrn, txn.tid, txn.amount)] = txn
        self._prune(txn.created)

    def previous(self, tid: str, stan: str, transmitted: str, now: float) -> Txn | None:
        """An earlier request with the same terminal, STAN and transmission time, in the window."""
        txn = self._by_key.get((tid, stan, transmitted))
        if txn is None or now - txn.created > self.window:
            return None
        return txn

    def original(self, tid: str, mti: str, stan: str, transmitted: str) -> Txn | None:
        return self._originals.get((tid, mti, stan, transmitted))

    def by_rrn(self, rrn: str, tid: str, amount: int) -> Txn | None:
        return self._by_rrn.get((rrn, tid, amount))

    def _prune(self, now: float) -> None:
        """Forget the oldest entries beyond capacity (the journal still has them)."""
        while len(self._by_key) > self.capacity:
            _, old = self._by_key.popitem(last=False)
            self._originals.pop((old.tid, old.mti, old.stan, old.transmitted), None)
            if old.rrn:
                self._by_rrn.pop((old.rrn, old.tid, old.amount), None)
