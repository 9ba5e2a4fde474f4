"""`journal check` fails on each way the exactly-once invariant can be broken, as the journal
shows it, and passes a journal where it holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from switch import audit
from switch.journal import connect, migrate

ROW = ("INSERT INTO transactions (trace, created_at, mti, tid, stan, transmitted, amount, state, rc, sent_at,"
       " original_trace, reason, issuer) VALUES (?, 0, ?, 'T1', ?, '1201120000', 100, ?, ?, ?, ?, ?, 'bank')")
SAF = ("INSERT INTO saf (issuer, trace, kind, mti, payload, status, next_attempt, created_at, updated_at)"
       " VALUES ('bank', ?, ?, '0420', x'00', ?, 0, 0, 0)")


def journal(tmp_path: Path, rows: list[tuple], saf: list[tuple] = ()) -> sqlite3.Connection:
    connection = connect(tmp_path / "journal.db")
    migrate(connection)
    connection.executemany(ROW, rows)
    connection.executemany(SAF, saf)
    return connection


def sent(trace: int, state: str, rc: str = "00", stan: str | None = None, mti: str = "0200",
         original: int | None = None, reason: str | None = None) -> tuple:
    return (trace, mti, stan or f"{trace:06d}", state, rc, 1.0, original, reason)


def test_a_journal_where_the_invariant_holds_passes(tmp_path):
    connection = journal(tmp_path, [
        sent(1, "approved"), sent(2, "declined", "51"), sent(3, "timed_out", "91"),
        sent(4, "reversed"), sent(5, "approved", "00", mti="0400", original=4),
        (6, "0200", "000006", "rejected", "30", None, None, "failed checks"),
    ], [(3, "timeout_reversal", "acknowledged")])
    assert audit.check(connection, None) == []


@pytest.mark.parametrize("rows, saf, broken", [
    ([(1, "0200", "000001", "pending", None, 1.0, None, None)], [], "not in a final state"),
    ([sent(1, "timed_out", "91")], [], "without a final answer and have no reversal"),
    ([sent(1, "interrupted", "91")], [], "without a final answer and have no reversal"),
    ([sent(1, "stood_in")], [], "without a final answer and have no reversal"),
    ([sent(1, "timed_out", "91")], [(1, "timeout_reversal", "parked")], "not yet acknowledged"),
    ([sent(1, "approved"), sent(2, "approved", mti="0400", original=1)], [], "whose original is not marked reversed"),
    ([sent(1, "reversed"), sent(2, "approved", mti="0420", original=1)], [], "advised via SAF with no SAF item"),
    ([sent(1, "approved", stan="000009"), sent(2, "approved", stan="000009")], [], "sent to the issuer more than once"),
    ([sent(1, "declined", "!!")], [], "not two letters or digits"),
])
def test_each_way_the_invariant_breaks_is_reported(tmp_path, rows, saf, broken):
    problems = audit.check(journal(tmp_path, rows, saf), None)
    assert any(broken in problem for problem in problems), problems
