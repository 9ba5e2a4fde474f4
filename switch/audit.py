"""Invariants over a journal: the questions asked after anything went wrong.

The invariant (DESIGN.md): approvals at the issuer minus reversals equal the approvals the
terminals saw, no request approved twice, a retransmission answered as the first time. From the
journal's side: every row reached a final state; every request that may have reached its issuer
without a final answer has a reversal, and every reversal was acknowledged; every reversal the
terminal was told of took effect; no request was sent twice; no stored response code is
malformed; and no file under the data directory holds the full PAN of any card the journal has seen.
`cardswitch journal check` and the resilience tests both ask them here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from switch.core.states import FINAL_STATES
from switch.journal import Connection
from switch.wire.luhn import luhn_valid

def unfinished_rows(connection: Connection) -> list[int]:
    marks = ",".join("?" * len(FINAL_STATES))
    rows = connection.execute(f"SELECT trace FROM transactions WHERE state NOT IN ({marks})",
                              tuple(FINAL_STATES)).fetchall()
    return [row[0] for row in rows]


def _traces(connection: Connection, sql: str) -> list[int]:
    return [row[0] for row in connection.execute(sql).fetchall()]


# An authorisation or purchase that was sent and ended without the issuer's own final answer
# (timed out, its link dropped, an unreadable answer, stood in after that, or the switch stopped):
# the issuer may have approved it, so a reversal must be on its way.
_SENT_WITHOUT_ANSWER = (
    "t.mti IN ('0100', '0200') AND t.sent_at IS NOT NULL"
    " AND t.state IN ('timed_out', 'failed', 'stood_in', 'interrupted')")
_REVERSAL_KINDS = "('timeout_reversal', 'recovery_reversal')"


def unreversed_unknown_outcomes(connection: Connection) -> list[int]:
    """Sent, no usable answer, and no reversal queued for it."""
    return _traces(connection, (
        f"SELECT t.trace FROM transactions t WHERE {_SENT_WITHOUT_ANSWER} AND NOT EXISTS ("
        f" SELECT 1 FROM saf s WHERE s.trace = t.trace AND s.kind IN {_REVERSAL_KINDS})"))


def undelivered_reversals(connection: Connection) -> list[int]:
    """Reversals (of any kind) the issuer has not acknowledged yet: queued, retrying or parked."""
    return _traces(connection, (
        "SELECT id FROM saf WHERE kind LIKE '%reversal' AND status != 'acknowledged'"))


def reversals_without_effect(connection: Connection) -> list[int]:
    """Reversal rows the terminal got 00 for, whose original the journal still shows as not
    reversed although it was one to reverse."""
    return _traces(connection, (
        "SELECT r.trace FROM transactions r JOIN transactions o ON o.trace = r.original_trace"
        " WHERE r.mti IN ('0400', '0420') AND r.state = 'approved' AND r.sent_at IS NOT NULL"
        " AND o.state NOT IN ('reversed', 'partially_reversed')"))


def reversals_not_delivered(connection: Connection) -> list[int]:
    """Reversal rows that went to SAF (their reason says so) with no reversal item for their
    original."""
    return _traces(connection, (
        "SELECT r.trace FROM transactions r WHERE r.mti IN ('0400', '0420') AND r.state = 'approved'"
        " AND r.sent_at IS NOT NULL AND (r.mti = '0420' OR r.reason LIKE '%via SAF')"
        " AND NOT EXISTS (SELECT 1 FROM saf s WHERE s.trace = r.original_trace AND s.kind = 'reversal')"))


def approved_twice(connection: Connection) -> list[int]:
    """Requests (terminal, STAN, transmission time, message class) the switch sent for approval
    more than once: a retransmission must be answered, never forwarded again."""
    return _traces(connection, (
        "SELECT min(trace) FROM transactions WHERE mti IN ('0100', '0200') AND sent_at IS NOT NULL"
        " AND state != 'duplicate' GROUP BY tid, stan, transmitted, mti HAVING count(*) > 1"))


def answers_without_valid_code(connection: Connection) -> list[int]:
    """Final rows whose stored response code is not two letters or digits."""
    return [row[0] for row in connection.execute(
        "SELECT trace, rc FROM transactions WHERE state != 'pending' AND rc IS NOT NULL").fetchall()
        if not (len(row[1]) == 2 and row[1].isascii() and row[1].isalnum())]


def pan_patterns(masked_pans: set[str]) -> list[re.Pattern[bytes]]:
    """For each masked PAN the journal knows (first 6 ... last 4), a pattern of the full PAN it
    hides: the same first 6 and last 4 with the right number of digits between, Luhn-checked
    afterwards. Looking only for the cards that actually passed keeps digits that merely sit
    side by side (a terminal id, a STAN and a time in an index) from raising false alarms."""
    patterns = []
    for masked in sorted(masked_pans):
        if len(masked) >= 13 and masked[:6].isdigit() and masked[-4:].isdigit():
            middle = len(masked) - 10
            patterns.append(re.compile(masked[:6].encode() + rb"[0-9]{%d}" % middle + masked[-4:].encode()))
    return patterns


def files_with_pans(data_dir: Path, masked_pans: set[str]) -> list[str]:
    """Files under `data_dir` holding the full, Luhn-valid form of one of `masked_pans`."""
    patterns = pan_patterns(masked_pans)
    found = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if any(luhn_valid(m.group().decode()) for pattern in patterns for m in pattern.finditer(data)):
            found.append(str(path))
    return found


_CHECKS = (
    (unfinished_rows, "transactions not in a final state (run the switch once to recover them)"),
    (unreversed_unknown_outcomes, "requests that may have reached the issuer without a final answer and have no reversal"),
    (undelivered_reversals, "reversals not yet acknowledged by their issuer (SAF ids; parked ones need an operator)"),
    (reversals_without_effect, "reversals answered 00 whose original is not marked reversed"),
    (reversals_not_delivered, "reversals advised via SAF with no SAF item"),
    (approved_twice, "requests sent to the issuer more than once (first traces)"),
    (answers_without_valid_code, "rows whose response code is not two letters or digits"),
)


CHECK_STEPS = len(_CHECKS) + 1  # the invariants, then the data directory's files


def check(connection: Connection, data_dir: Path | None,
          step: Callable[[], object] | None = None) -> list[str]:
    """Every broken invariant, one line each; empty when all hold. `step` is called after each
    of CHECK_STEPS steps (a progress bar)."""
    problems = []
    for find, what in _CHECKS:
        found = find(connection)
        if found:
            problems.append(f"{len(found)} {what}: {found[:10]}")
        if step is not None:
            step()
    if data_dir is not None:
        masked = {row[0] for row in connection.execute(
            "SELECT DISTINCT pan_masked FROM transactions WHERE pan_masked IS NOT NULL")}
        for path in files_with_pans(data_dir, masked):
            problems.append(f"{path}: holds what looks like a full PAN")
    if step is not None:
        step()
    return problems
