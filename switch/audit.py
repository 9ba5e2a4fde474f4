"""Invariants over a journal: the questions asked after anything went wrong.

Every journal row reached a final state; every approval that arrived too late has an
acknowledged reversal at the issuer; no file under the data directory holds the full PAN of any
card the journal has seen.
`cardswitch journal check` and the resilience tests both ask them here.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from switch.core.states import FINAL_STATES
from switch.wire.luhn import luhn_valid

def unfinished_rows(connection: sqlite3.Connection) -> list[int]:
    marks = ",".join("?" * len(FINAL_STATES))
    rows = connection.execute(f"SELECT trace FROM transactions WHERE state NOT IN ({marks})",
                              tuple(FINAL_STATES)).fetchall()
    return [row[0] for row in rows]


def unreversed_late_approvals(connection: sqlite3.Connection) -> list[int]:
    rows = connection.execute(
        "SELECT t.trace FROM transactions t WHERE t.late_rc = '00' AND NOT EXISTS ("
        " SELECT 1 FROM saf s WHERE s.trace = t.trace AND s.kind = 'late_reversal'"
        " AND s.status = 'acknowledged')").fetchall()
    return [row[0] for row in rows]


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


def check(connection: sqlite3.Connection, data_dir: Path | None) -> list[str]:
    """Every broken invariant, one line each; empty when all hold."""
    problems = []
    unfinished = unfinished_rows(connection)
    if unfinished:
        problems.append(f"{len(unfinished)} transactions not in a final state (traces {unfinished[:10]})")
    late = unreversed_late_approvals(connection)
    if late:
        problems.append(f"{len(late)} late approvals without an acknowledged reversal (traces {late[:10]})")
    if data_dir is not None:
        masked = {row[0] for row in connection.execute(
            "SELECT DISTINCT pan_masked FROM transactions WHERE pan_masked IS NOT NULL")}
        for path in files_with_pans(data_dir, masked):
            problems.append(f"{path}: holds what looks like a full PAN")
    return problems
