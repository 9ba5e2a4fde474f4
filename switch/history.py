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
    # As sent to the issuer; held only while the request runs, for the stand-in or late-reversal
    # advice it may need (advices are built without its card data).
    forwarded: Message | None = None
    # Field 90 (its text) naming what the issuer got: for its reversal.
    sent_as: str | None = None
    # What a retransmission needs of the response (engine.retained_response). Like every other
    # value a finished transaction keeps, a plain one: the collector tracks only the Txn itself.
    response: dict[str, str] | None = None
    reversed_amount: int = 0
    stood_in: bool = False  # approved by the switch for the issuer, whatever its state is now
    issuer_ms: float | None = None  # waiting for the issuer's answer (logged: the switch's own time is the rest)
    finished: bool = False  # the outcome is known and journaled
    # Created only for a retransmission or reversal that arrives while this one is in flight:
    # the window holds hundreds of thousands of transactions, each object is the collector's.
    _finished_event: trio.Event | None = attrs.field(default=None, init=False)

    @property
    def duplicate_key(self) -> tuple[str, str, str]:
        return (self.tid, self.stan, self.transmitted)

    def finish(self) -> None:
        self.finished = True
        if self._finished_event is not None:
            self._finished_event.set()

    async def wait_finished(self) -> None:
        if self.finished:
            await trio.lowlevel.checkpoint()
            return
        if self._finished_event is None:
            self._finished_event = trio.Event()
        await self._finished_event.wait()


class History:
    """The duplicate window in memory. Entries leave when they are older than the window or
    beyond `capacity`; reversals of older originals find them in the journal."""

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
        self._by_key.move_to_end(txn.duplicate_key)  # oldest first, for _prune
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
        """Forget entries older than the window, and the oldest beyond capacity; never one still
        in flight, which a reversal must be able to wait for (the journal's copy is pending)."""
        by_key = self._by_key
        while by_key:
            old = next(iter(by_key.values()))
            if not old.finished or (len(by_key) <= self.capacity and now - old.created <= self.window):
                return
            del by_key[old.duplicate_key]
            if self._originals.get((old.tid, old.mti, old.stan, old.transmitted)) is old:
                del self._originals[(old.tid, old.mti, old.stan, old.transmitted)]
            if old.rrn and self._by_rrn.get((old.rrn, old.tid, old.amount)) is old:
                del self._by_rrn[(old.rrn, old.tid, old.amount)]
