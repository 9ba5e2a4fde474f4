"""Invariants over a journal: the questions asked after anything went wrong.

Every journal row reached a final state; every approval that arrived too late has an
acknowledged reversal at the issuer; no file under the data directory holds a full PAN.
`cardswitch journal check` and the resilience tests both ask them here.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from switch.journal import FINAL_STATES

# 13 to 19 digits not part of a longer digit run: what a PAN in clear looks like.
PAN_PATTERN = re.compile(rb"(?<![0-9])[0-9]{13,19}(?![0-9])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


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


def files_with_pans(data_dir: Path, known_pans: set[str] | None = None) -> list[str]:
    """Files under `data_dir` holding a Luhn-valid 13-19 digit run (or one of `known_pans`)."""
    found = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = {m.group().decode() for m in PAN_PATTERN.finditer(data)}
        if any(luhn_valid(hit) for hit in hits) or any(pan.encode() in data for pan in known_pans or ()):
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
        for path in files_with_pans(data_dir):
            problems.append(f"{path}: holds what looks like a full PAN")
    return problems
