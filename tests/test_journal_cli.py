"""`cardswitch journal list` as a user runs it: a list cut by its limit says so, unknown states
are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from switch.journal import connect, migrate

ROOT = Path(__file__).resolve().parents[1]
ROW = ("INSERT INTO transactions (trace, created_at, mti, tid, stan, transmitted, amount, state, rc)"
       " VALUES (?, 1.0, '0200', 'T1', ?, '1201120000', 100, ?, '00')")


def journal_db(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "journal.db"
    connection = connect(path)
    migrate(connection)
    connection.executemany(ROW, [(trace, f"{trace:06d}", "approved" if trace % 2 else "declined")
                                 for trace in range(1, count + 1)])
    connection.commit()
    connection.close()
    return path


def journal_list(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "journal", "list", "--db", str(db), "--json", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_list_cut_by_the_limit_says_so_and_limit_0_shows_all(tmp_path):
    db = journal_db(tmp_path, 1205)
    default = journal_list(db)
    traces = [json.loads(line)["trace"] for line in default.stdout.splitlines()]
    assert default.returncode == 0 and traces == list(range(206, 1206))  # the newest 1,000, oldest first
    assert "newest 1000" in default.stderr and "--limit 0" in default.stderr
    everything = journal_list(db, "--limit", "0")
    assert len(everything.stdout.splitlines()) == 1205 and everything.stderr == ""
    exact = journal_list(db, "--limit", "1205")
    assert len(exact.stdout.splitlines()) == 1205 and exact.stderr == ""
    few = journal_list(db, "--limit", "3", "--state", "approved")
    assert [json.loads(line)["trace"] for line in few.stdout.splitlines()] == [1201, 1203, 1205]
    assert "newest 3" in few.stderr


@pytest.mark.parametrize("args, option", [(("--state", "bogus"), "--state"), (("--limit", "-1"), "--limit")])
def test_an_unknown_state_or_negative_limit_is_one_line_exit_2(tmp_path, args, option):
    result = journal_list(journal_db(tmp_path, 3), *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"cardswitch: error: {option}:")
    if option == "--state":
        assert "timed_out" in result.stderr and "stood_in" in result.stderr
