"""tools/pgcluster.py and the PostgreSQL fixtures (tests/conftest.py): a throwaway cluster that
starts, answers, does not run as root and leaves nothing behind; a database of its own per test;
and a plain one-line error when the server binaries are missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from tools import pgcluster

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"postgresql://postgres@127\.0\.0\.1:(\d+)/postgres")


def uid_of(pid: int) -> int:
    """The real user id of process `pid` (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def no_binaries_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which no initdb or pg_ctl can be found: an empty PATH directory, and a
    search pattern that matches nothing."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "CARDSWITCH_TEST_POSTGRES"}
    env.update(PATH=str(empty), **{pgcluster.SEARCH_ENV: str(tmp_path / "nothing" / "*" / "bin")})
    return env


def test_a_cluster_starts_answers_runs_unprivileged_and_stop_removes_it():
    with pgcluster.cluster() as started:
        assert URL.fullmatch(started.url)
        with psycopg.connect(started.url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
            assert connection.execute("SHOW fsync").fetchone() == ("off",)
            backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
            # read while the connection holds its backend: a closed one's process may be gone
            postmaster = int((started.directory / "data" / "postmaster.pid").read_text().split()[0])
            for pid in (postmaster, backend):
                assert uid_of(pid) != 0
                if os.geteuid() == 0:
                    assert uid_of(pid) == pgcluster.pwd.getpwnam("postgres").pw_uid
        assert started.directory.is_dir()
    assert not started.directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(started.url, connect_timeout=2)


# Two tests, each with a database of its own: the same table made in both, and the names seen,
# to check after them that the databases were different and are gone.
seen_databases: list[str] = []


@pytest.mark.parametrize("marker", ["first", "second"])
def test_each_test_has_an_empty_database_of_its_own(postgres_url, postgres_server, marker):
    with psycopg.connect(postgres_url) as connection:
        name = connection.execute("SELECT current_database()").fetchone()[0]
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchone()
        assert tables == (0,)
        connection.execute("CREATE TABLE marker (what text)")
        connection.execute("INSERT INTO marker VALUES (%s)", (marker,))
    with psycopg.connect(postgres_server) as connection:
        assert connection.execute("SELECT to_regclass('marker')").fetchone() == (None,)
    seen_databases.append(name)


def test_the_test_databases_were_different_and_are_dropped(postgres_server):
    assert len(seen_databases) == 2 and seen_databases[0] != seen_databases[1]
    with psycopg.connect(postgres_server) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                                  (seen_databases,)).fetchall()
    assert left == []


def test_the_command_line_starts_prints_the_url_and_stops():
    directory = Path(tempfile.gettempdir()) / f"cardswitch-pgcli-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "tools.pgcluster"]
    try:
        started = subprocess.run([*command, "start", str(directory)], cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert URL.fullmatch(url)
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        stopped = subprocess.run([*command, "stop", str(directory)], cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout == ""
        assert not directory.exists()
    finally:
        pgcluster.stop(directory)


def test_missing_binaries_are_one_line_and_exit_2(tmp_path):
    directory = tmp_path / "cluster"
    result = subprocess.run([sys.executable, "-m", "tools.pgcluster", "start", str(directory)], cwd=ROOT,
                            env=no_binaries_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "install Debian's postgresql package" in result.stderr
    assert not directory.exists()


def test_missing_binaries_fail_the_tests_that_need_postgres_and_skip_nothing(tmp_path):
    """Without a server and without binaries a test asking for postgres_url fails (an error at
    its setup) with a one-line reason: it is not skipped."""
    test = tmp_path / "test_needs_postgres.py"
    test.write_text("def test_needs_postgres(postgres_url):\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "--rootdir", str(tmp_path),
         "-c", str(ROOT / "pyproject.toml"), str(test)],
        cwd=ROOT, env={**no_binaries_env(tmp_path), "PYTHONPATH": str(ROOT / "tests")},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout
    assert "fixture 'postgres_url' not found" not in result.stdout
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert re.search(r"the tests need PostgreSQL: no PostgreSQL server binaries .* install Debian's postgresql "
                     r"package .*; or set CARDSWITCH_TEST_POSTGRES", result.stdout)


def test_stop_removes_only_a_cluster_directory(tmp_path):
    """`stop DIR` deletes DIR: not when DIR holds something other than a cluster of ours."""
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(pgcluster.ClusterError, match="not removing it"):
        pgcluster.stop(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
