"""After a crash: what the last run (or, on a shared journal, a dead instance: switch.instances)
left in flight is reversed or completed, before the switch takes any traffic.

Every request that may have reached an issuer carries in its journal row the sealed 0420 that
undoes it (written, durably, before it left: switch.service `_prepare`). A row still `pending`
at start is one whose terminal got no answer (answers leave only once their row is durable), so:

- an authorisation or purchase with its 0420 may have been approved: the 0420 goes to SAF
  (`recovery_reversal`), the row becomes `interrupted` with 91, and a retransmission of it is
  answered 91 from the journal;
- a terminal's reversal with its 0420 is completed: the 0420 goes to SAF unless one for the same
  original was queued after the reversal arrived, the original is marked reversed, and the row
  becomes `approved` with 00, which a retransmission gets;
- anything else never reached an issuer: `interrupted` without an answer, and a retransmission
  of it is processed as new.

Advices queued for a request whose terminal got no answer are withdrawn (SAF status
`withdrawn`), whether its row is pending or was never written (switch.records writes a request
answered without reaching an issuer only with its answer): the advice of a stand-in approval
no terminal saw must not reach the issuer, and an acquirer's advice that was never acknowledged
comes again from its terminal. (One already delivered before the crash cannot be withdrawn.)

Issuer links continue their STANs where the journal saw them last, past a margin for the
messages the journal does not record one by one (SAF deliveries, echoes).
"""

from __future__ import annotations

import time

import attrs

from switch import logs
from switch.core.codes import RC
from switch.core.states import NOT_TO_REVERSE, State
from switch.journal import Connection, Row
from switch.records import stored_response
from switch.saf import ANSWER_ADVICES, OPEN_STATUSES
from switch.wire.message import response_mti

STAN_MARGIN = 1000


@attrs.frozen
class Recovered:
    reversed: int  # requests that may have been approved, now reversed through SAF
    completed: int  # terminals' reversals completed
    never_sent: int  # interrupted before anything reached an issuer
    instances: int = 0  # dead instances whose work this was (shared journal)
    withdrawn: int = 0  # advices of requests never answered, not sent after all


def recover(connection: Connection, me: int, dead: list[int] | None, business_date: str) -> Recovered:
    """Settle the `pending` rows of the `dead` instances (None: every pending row), within the
    caller's transaction; what goes to SAF is `me`'s to deliver. The rows are decided now: they
    settle on today's `business_date`."""
    now = time.time()
    counts = {"reversed": 0, "completed": 0, "never_sent": 0}
    where, params = "state = 'pending'", tuple(dead or ())
    if dead is not None:
        where += f" AND instance IN ({_marks(dead)})"
    rows = connection.execute(
        "SELECT trace, mti, issuer, reversal, original_trace, reversed_amount, created_at FROM transactions"
        f" WHERE {where} ORDER BY trace", params).fetchall()
    withdrawn = _withdraw_unanswered_advices(connection, dead)
    for row in rows:
        if row["reversal"] is not None and row["mti"] in ("0400", "0420") and row["original_trace"] is not None:
            _complete_reversal(connection, row, now, me, business_date)
            counts["completed"] += 1
        elif row["reversal"] is not None:
            _queue(connection, row["issuer"], row["trace"], "recovery_reversal", row["reversal"], now, me)
            _settle(connection, row, State.INTERRUPTED, RC.ISSUER_UNAVAILABLE,
                    "switch stopped while in flight: reversed", business_date)
            counts["reversed"] += 1
        else:
            connection.execute(
                "UPDATE transactions SET state = ?, reason = ?, completed_at = ?, business_date = ? WHERE trace = ?",
                (State.INTERRUPTED, "switch stopped while in flight: never sent", now, business_date, row["trace"]))
            counts["never_sent"] += 1
    recovered = Recovered(**counts, withdrawn=withdrawn)
    if rows or withdrawn:
        logs.warning("journal_recovered", **attrs.asdict(recovered))
    return recovered


def _withdraw_unanswered_advices(connection: Connection, dead: list[int] | None) -> int:
    """Withdraw the undelivered advices of the `dead` instances (None: of any) whose request got
    no answer: its row still pending (run before the rows are settled) or never written. Returns
    how many."""
    undelivered = (*OPEN_STATUSES, "parked")
    sql = (f"UPDATE saf SET status = 'withdrawn', updated_at = ? WHERE kind IN ({_marks(ANSWER_ADVICES)})"
           f" AND status IN ({_marks(undelivered)}) AND NOT EXISTS (SELECT 1 FROM transactions t"
           " WHERE t.trace = saf.trace AND t.state != 'pending')")
    params: list[object] = [time.time(), *ANSWER_ADVICES, *undelivered]
    if dead is not None:
        sql += f" AND owner IN ({_marks(dead)})"
        params += dead
    return len(connection.execute(sql + " RETURNING id", params).fetchall())


def _marks(values: tuple | list) -> str:
    return ",".join("?" * len(values))


def _complete_reversal(connection: Connection, row: Row, now: float, me: int, business_date: str) -> None:
    original = connection.execute("SELECT amount, state, reversed_amount FROM transactions WHERE trace = ?",
                                  (row["original_trace"],)).fetchone()
    queued = connection.execute(
        "SELECT 1 FROM saf WHERE trace = ? AND kind = 'reversal' AND created_at >= ?",
        (row["original_trace"], row["created_at"])).fetchone()
    if queued is None:
        _queue(connection, row["issuer"], row["original_trace"], "reversal", row["reversal"], now, me)
    if original is not None and original["state"] not in NOT_TO_REVERSE:
        reversed_amount = max(original["reversed_amount"], row["reversed_amount"])
        state = State.REVERSED if reversed_amount >= original["amount"] else State.PARTIALLY_REVERSED
        connection.execute("UPDATE transactions SET state = ?, reversed_amount = ? WHERE trace = ?",
                           (state, reversed_amount, row["original_trace"]))
    _settle(connection, row, State.APPROVED, RC.APPROVED, "completed after a restart: reversal advised via SAF",
            business_date)


def _queue(connection: Connection, issuer: str, trace: int, kind: str, sealed: bytes, now: float, me: int) -> None:
    connection.execute(
        "INSERT INTO saf (issuer, trace, kind, mti, payload, status, attempts, next_attempt, created_at, updated_at,"
        " owner) VALUES (?, ?, ?, '0420', ?, 'queued', 0, ?, ?, ?, ?)", (issuer, trace, kind, sealed, now, now, now, me))


def _settle(connection: Connection, row: Row, state: State, code: RC, reason: str, business_date: str) -> None:
    """The row's outcome, and the answer a retransmission of it gets."""
    connection.execute(
        "UPDATE transactions SET state = ?, rc = ?, reason = ?, response = ?, reversal = NULL, completed_at = ?,"
        " business_date = ? WHERE trace = ?",
        (state, code, reason, stored_response(response_mti(row["mti"]), {"39": code}), time.time(), business_date,
         row["trace"]))


def last_stans(connection: Connection, issuers: list[str], low: int, high: int) -> dict[str, int]:
    """Per issuer, the STAN its link should continue after, within the instance's range
    `low`..`high` (low - 1: nothing known)."""
    stans = {}
    for issuer in issuers:
        row = connection.execute(
            "SELECT sent_as FROM transactions WHERE issuer = ? AND sent_as IS NOT NULL"
            " AND substr(sent_as, 5, 6) BETWEEN ? AND ? ORDER BY created_at DESC LIMIT 1",
            (issuer, f"{low:06d}", f"{high:06d}")).fetchone()
        stan = row["sent_as"][4:10] if row is not None else ""
        stans[issuer] = low + (int(stan) - low + STAN_MARGIN) % (high - low + 1) if stan.isascii() and stan.isdigit() else low - 1
    return stans
