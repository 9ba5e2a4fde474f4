"""How a transaction's life is written to the journal: one row per request, written whole
when it first matters and updated after. A request about to reach an issuer is written with the
reversal that undoes it (state pending, durably, before it leaves): a crash from then on leaves
a row that recovery reverses or completes. A request answered without reaching an issuer is
written once, with its outcome. What the request's row holds from its arrival is kept in memory
until then (`open`): a row written at arrival and updated twice cost a third more statements a
purchase (docs/performance.md), and a crash before any issuer saw the request leaves nothing to
undo (the terminal, unanswered, retransmits or reverses it; either finds no original and is new).
On a shared journal the row is written before its request claims its keys (`write_opened`):
another instance's retransmission must find it.

Only masked and hashed card data is written; the stored response drops card fields entirely
(the switch re-echoes them from a retransmission's own request).
"""

from __future__ import annotations

import json
import time

from switch.core.messages import FORWARDED_MTIS, NOT_RETAINED
from switch.core.standin import AMOUNT_REACHED, COUNT_REACHED, Decision, StandInLimits, utc_day
from switch.core.states import NOT_AN_ORIGINAL, NOT_TO_REVERSE, State
from switch.core.txn import Txn
from switch.journal import BatchedJournal, Connection, Row
from switch.logs import quoted
from switch.core.fields import NOT_JOURNALED
from switch.wire.masking import mask_pan, mask_pan_like
from switch.wire.message import Message, response_mti

# What the duplicate window keeps (switch.core.messages.retained_response) less what a journal
# row may never hold (switch.core.fields): ICC data, MACs, and field 48, which may carry CVV2. A
# retransmission answered after a restart therefore lacks those.
NOT_STORED = NOT_RETAINED | NOT_JOURNALED



def stored_response(mti: str, fields: dict[str, str]) -> str:
    """What the issuer added to the answer (38, 39, 54 ...), enough to answer a retransmission:
    the JSON text of {"mti": ..., "fields": {...}}, as json's encoder writes it (compact), but put
    together here with json's own string encoder for each key and value: every transaction
    writes one, and the encoder took 30k instructions for these few keys, most of it making the
    encoder for each call (14k so)."""
    try:
        kept = ",".join([f"{quoted(field)}:{quoted(value)}" for field, value in fields.items()
                         if field not in NOT_STORED])
    except TypeError:  # a value that is not text (a message's never is): written as its text
        return stored_response(mti, {str(field): str(value) for field, value in fields.items()})
    return f'{{"mti":{quoted(mti)},"fields":{{{kept}}}}}'


def loaded_response(text: str | None) -> dict[str, str] | None:
    """The fields of a stored response, as the duplicate window keeps them."""
    return json.loads(text)["fields"] if text else None


class TxnRecords:
    def __init__(self, journal: BatchedJournal, instance: int):
        self.journal = journal
        self.instance = instance  # written on every row: who to take over from if it dies
        # trace -> the values of `_OPENED` and the business date it was opened on, for the rows
        # not written yet (requests in flight before any issuer)
        self._unwritten: dict[int, tuple[tuple, str]] = {}

    def open(self, txn: Txn, request: Message, listener: str, pan: str | None, acquirer: str | None,
             business_date: str) -> None:
        """What the row of a request just taken holds from its arrival, on the business date it
        arrived on; written with what comes next (`prepared`, `close`, `write_opened`). Every
        value from the request is masked for PAN-like digit runs (switch.wire.masking.mask_pan_like):
        a misaligned frame puts card data in any field, and validation has not looked at it yet."""
        masked = mask_pan_like
        self._unwritten[txn.trace] = (
            (txn.trace, txn.created, listener, masked(txn.mti), masked(request.get("3")), txn.amount,
             masked(request.get("49")), masked(txn.tid), masked(request.get("42")), masked(txn.stan),
             masked(txn.transmitted), masked(txn.rrn), mask_pan(pan) if pan else None, txn.pan_hash,
             masked(request.get("19")), self.instance, masked(request.get("32") or acquirer)), business_date)

    def write_opened(self, txn: Txn) -> None:
        """Queue the row as it stands at arrival (pending), unless it is written already: for
        what must find it in the journal before the request goes on (a shared journal's claim)."""
        unwritten = self._unwritten.pop(txn.trace, None)
        if unwritten is not None:
            opened, opened_on = unwritten
            self.journal.execute(_INSERT_OPENED, (*opened, opened_on, _PENDING))

    def close(self, txn: Txn, latency_ms: float, reason: str | None, original_trace: int | None,
              risk: str | None, risk_counted: str | None, business_date: str, opened_on: str) -> None:
        """The outcome. `risk`: what the risk rules said (declined or flagged, by which rule);
        `risk_counted`: the rules whose counts the request is in, for rebuilding them at start;
        `business_date`: the day it was decided on, which it settles on; `opened_on`: the one
        `open` wrote. The date is written again only when a cutover fell in between: naming an
        indexed column in the UPDATE makes SQLite rewrite its index entry even to the same value
        (a fifth of the statements' CPU, measured in docs/performance.md)."""
        values = (time.time(), latency_ms, txn.issuer, _text(txn.rc), txn.approval, txn.state.value, reason,
                  original_trace,
                  stored_response(response_mti(txn.mti), txn.response) if txn.response is not None else None,
                  txn.sent_as, risk, risk_counted)
        unwritten = self._unwritten.pop(txn.trace, None)
        if unwritten is not None:  # answered without reaching an issuer: the whole row at once
            self.journal.execute(_INSERT_CLOSED, (*unwritten[0], *values, business_date))
        elif business_date == opened_on:
            self.journal.execute(_CLOSE_SAME_DAY, (*values, txn.trace))
        else:
            self.journal.execute(_CLOSE_NEXT_DAY, (*values, business_date, txn.trace))

    def prepared(self, txn: Txn, reversal: bytes, original_trace: int | None = None,
                 reversed_amount: int | None = None) -> None:
        """Before a request may reach its issuer: which issuer, under which field 90, and the
        sealed 0420 that undoes it, so that recovery after a crash can reverse it. A reversal's
        own row also names its original and the amount it takes off."""
        unwritten = self._unwritten.pop(txn.trace, None)
        if unwritten is None:
            self.journal.execute(*self._prepared(txn, reversal, original_trace, reversed_amount))
            return
        opened, opened_on = unwritten
        self.journal.execute(_INSERT_PREPARED, (*opened, opened_on, _PENDING, txn.issuer, txn.sent_as, reversal,
                                                original_trace, reversed_amount or 0, time.time()))

    @staticmethod
    def _prepared(txn: Txn, reversal: bytes, original_trace: int | None,
                  reversed_amount: int | None) -> tuple[str, tuple]:
        return ("UPDATE transactions SET issuer = ?, sent_as = ?, reversal = ?, original_trace = ?,"
                " reversed_amount = coalesce(?, reversed_amount), sent_at = ? WHERE trace = ?",
                (txn.issuer, txn.sent_as, reversal, original_trace, reversed_amount, time.time(), txn.trace))

    def prepare_reversal(self, connection: Connection, txn: Txn, reversal: bytes, original: Txn,
                         reversed_amount: int) -> bool:
        """On the shared journal, within one transaction: take the original for this reversal
        (its reversed amount raised, only if no other instance's reversal got there first),
        then what `prepared` writes. False, with nothing written, when the original is already
        reversed that far or no longer reversible."""
        taken = connection.execute(
            "UPDATE transactions SET reversed_amount = ? WHERE trace = ? AND reversed_amount < ?"
            f" AND state NOT IN ({_NOT_TO_REVERSE}) RETURNING trace",
            (reversed_amount, original.trace, reversed_amount)).fetchone()
        if taken is None:
            return False
        connection.execute(*self._prepared(txn, reversal, original.trace, reversed_amount))
        return True

    def claim(self, connection: Connection, txn: Txn, horizon: float) -> Row | None:
        """On the shared journal: make `txn` the request of its terminal, STAN and transmission
        time, unless another request within the duplicate window (newer than `horizon`, wall
        clock) holds them, whichever instance took it; returns that request's row. A holder
        interrupted before it reached an issuer gives way (its retransmission is new)."""
        mine = connection.execute(
            "INSERT INTO request_keys (tid, stan, transmitted, trace, claimed_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (tid, stan, transmitted) DO UPDATE SET trace = excluded.trace,"
            " claimed_at = excluded.claimed_at WHERE request_keys.claimed_at < ? OR EXISTS (SELECT 1 FROM"
            " transactions t WHERE t.trace = request_keys.trace AND t.state = 'interrupted' AND t.rc IS NULL)"
            " RETURNING trace", (txn.tid, txn.stan, txn.transmitted, txn.trace, txn.created, horizon)).fetchone()
        if mine is not None:
            return None
        return connection.execute(
            "SELECT t.* FROM request_keys k JOIN transactions t ON t.trace = k.trace"
            " WHERE k.tid = ? AND k.stan = ? AND k.transmitted = ?", (txn.tid, txn.stan, txn.transmitted)).fetchone()

    def reserve_stand_in(self, connection: Connection, issuer: str, pan_hash: str, amount: int,
                         limits: StandInLimits) -> Decision | None:
        """On the shared journal: count one stand-in approval of `amount` against the card's
        limits for today (UTC), only if both still allow it; else the Decision refusing it."""
        if amount > limits.daily_amount:
            return AMOUNT_REACHED
        day = utc_day(time.time()).isoformat()
        counted = connection.execute(
            "INSERT INTO stand_in_usage (issuer, pan_hash, day, count, amount) VALUES (?, ?, ?, 1, ?)"
            " ON CONFLICT (issuer, pan_hash, day) DO UPDATE SET count = stand_in_usage.count + 1,"
            " amount = stand_in_usage.amount + excluded.amount WHERE stand_in_usage.count < ?"
            " AND stand_in_usage.amount + excluded.amount <= ? RETURNING count",
            (issuer, pan_hash, day, amount, limits.daily_count, limits.daily_amount)).fetchone()
        if counted is not None:
            return None
        used = connection.execute("SELECT count FROM stand_in_usage WHERE issuer = ? AND pan_hash = ? AND day = ?",
                                  (issuer, pan_hash, day)).fetchone()
        return COUNT_REACHED if used[0] >= limits.daily_count else AMOUNT_REACHED

    def release_stand_in(self, issuer: str, pan_hash: str, amount: int, whole: bool, approved_at: float) -> None:
        """A stood-in approval reversed: its day's usage no longer counts it (shared journal)."""
        self.journal.execute(
            "UPDATE stand_in_usage SET count = CASE WHEN count > ? THEN count - ? ELSE 0 END,"
            " amount = CASE WHEN amount > ? THEN amount - ? ELSE 0 END WHERE issuer = ? AND pan_hash = ? AND day = ?",
            (int(whole), int(whole), amount, amount, issuer, pan_hash, utc_day(approved_at).isoformat()))

    async def reload(self, txn: Txn) -> bool:
        """Bring `txn`, read from the journal earlier, up to date; True once it is finished."""
        row = await self.journal.commit(
            lambda connection: connection.execute("SELECT * FROM transactions WHERE trace = ?", (txn.trace,)).fetchone())
        if row is None or row["state"] == State.PENDING:
            return False
        fresh = txn_from_row(row, txn.seen)
        for name in ("issuer", "state", "rc", "approval", "response", "reversed_amount", "sent_as", "stood_in"):
            setattr(txn, name, getattr(fresh, name))
        txn.finished = True
        return True

    def reversed(self, txn: Txn) -> None:
        self.journal.execute("UPDATE transactions SET state = ?, reversed_amount = ? WHERE trace = ?",
                             (txn.state.value, txn.reversed_amount, txn.trace))

    def late_response(self, trace: int, rc: str | None) -> None:
        self.journal.execute("UPDATE transactions SET late_rc = ? WHERE trace = ?", (rc, trace))

    # A retransmission's row (duplicate) or a refused one (rejected) has the original's keys but
    # is not the original: only the first transmission the switch acted on can be reversed.
    # `now` below is the switch's clock (trio's): a row's `seen` on it is its age on the wall clock
    # before `now`, the best there is for a row of an earlier run.
    async def find_original(self, tid: str, mti: str, stan: str, transmitted: str, now: float) -> Txn | None:
        return await self._find("tid = ? AND mti = ? AND stan = ? AND transmitted = ?"
                                f" AND state NOT IN ({_NOT_ORIGINALS})", (tid, mti, stan, transmitted), now)

    async def find_by_rrn(self, rrn: str, tid: str, amount: int, now: float) -> Txn | None:
        return await self._find("rrn = ? AND tid = ? AND amount = ? AND mti IN ('0100', '0200')"
                                f" AND state NOT IN ({_NOT_ORIGINALS})", (rrn, tid, amount), now)

    async def _find(self, where: str, params: tuple, now: float) -> Txn | None:
        def query(connection: Connection):
            return connection.execute(
                f"SELECT * FROM transactions WHERE {where} ORDER BY created_at DESC LIMIT 1", params).fetchone()

        row = await self.journal.commit(query)
        if row is None:
            return None
        txn = txn_from_row(row, now)
        txn.remote = self.journal.shared
        return txn

    def recent(self, since: float, now: float) -> list[Txn]:
        """Requests since `since` (start-up only): the duplicate window survives a restart. A
        request interrupted before it reached an issuer is left out: its retransmission is new."""
        marks = ",".join("?" * len(FORWARDED_MTIS))
        rows = self.journal.read(
            f"SELECT * FROM transactions WHERE created_at >= ? AND mti IN ({marks})"
            f" AND state NOT IN ({_NOT_ORIGINALS}) AND NOT (state = 'interrupted' AND rc IS NULL)"
            " ORDER BY trace", (since, *sorted(FORWARDED_MTIS)))
        txns = [txn_from_row(row, now) for row in rows]
        for txn in txns:
            txn.remote = self.journal.shared  # another instance's may still be in flight there
        return txns


def _insert(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO transactions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


# A row's columns in the order `open` keeps their values, then the ones each first write adds.
_OPENED = ("trace", "created_at", "listener", "mti", "processing_code", "amount", "currency", "tid", "mid", "stan",
           "transmitted", "rrn", "pan_masked", "pan_hash", "country", "instance", "acquirer")
_INSERT_OPENED = _insert(_OPENED + ("business_date", "state"))
_INSERT_PREPARED = _insert(_OPENED + ("business_date", "state", "issuer", "sent_as", "reversal", "original_trace",
                                      "reversed_amount", "sent_at"))
# What `close` writes, in the order of its values.
_CLOSED = ("completed_at", "latency_ms", "issuer", "rc", "approval", "state", "reason", "original_trace", "response",
           "sent_as", "risk", "risk_counted")
_INSERT_CLOSED = _insert(_OPENED + _CLOSED + ("business_date",))
_CLOSE = ("UPDATE transactions SET " + ", ".join(f"{column} = ?" for column in _CLOSED)
          + ", reversal = NULL{date} WHERE trace = ?")
_CLOSE_SAME_DAY, _CLOSE_NEXT_DAY = _CLOSE.format(date=""), _CLOSE.format(date=", business_date = ?")


# Response codes and states are str enums, which SQLite's module would adapt as objects of a
# type of its own (the costly path switch.journal explains): rows get their plain text.
_PENDING = State.PENDING.value


def _text(value: str | None) -> str | None:
    return None if value is None else str(value)


_NOT_ORIGINALS = ", ".join(f"'{state}'" for state in sorted(NOT_AN_ORIGINAL))
_NOT_TO_REVERSE = ", ".join(f"'{state}'" for state in sorted(NOT_TO_REVERSE))


def txn_from_row(row: Row, now: float) -> Txn:
    """A journal row as a transaction in memory, `seen` on the switch's clock at `now`."""
    age = time.time() - row["created_at"]
    txn = Txn(trace=row["trace"], mti=row["mti"], tid=row["tid"] or "", stan=row["stan"] or "",
              transmitted=row["transmitted"] or "", rrn=row["rrn"], amount=row["amount"] or 0,
              pan_hash=row["pan_hash"], created=row["created_at"], seen=now - age,
              issuer=row["issuer"], state=State(row["state"]),
              rc=row["rc"], approval=row["approval"], response=loaded_response(row["response"]),
              reversed_amount=row["reversed_amount"],
              sent_as=row["sent_as"] or None)
    txn.finished = txn.state is not State.PENDING
    txn.stood_in = txn.state is State.STOOD_IN  # once reversed, the journal no longer says
    return txn
