"""Shared fixtures: the demo network over real loopback sockets, a JSON log file, cardswitch
as real processes (tests/processes.py), and a CA of the test's own for TLS."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

import pytest
import trio
import trio.testing

from emulators.bank import Bank, parse_account
from emulators.certificates import issue_certificate, make_test_ca
from emulators.issuer import IssuerHostConfig, serve_issuer
from emulators.network import start_network
from processes import Processes
from switch import logs
from switch.config import load_config
from switch.service import Switch
from tools import pgcluster
from tools.load.processes import toml_text
from switch.tomlfile import Table
from switch.wire.dialect import load_dialect


@pytest.fixture
def virtual_clock() -> trio.testing.MockClock:
    """Trio's clock for a test where time is the subject (timeouts, echo intervals, windows):
    it runs 20 times faster than the wall clock, and a test may `jump()` it. Not autojump: the
    loop waits, briefly, on the journal's writer thread and on loopback sockets, and must not
    leap over those, and the switch's own periodic tasks (log batching, loop-lag watch) would
    keep an autojump from ever getting far."""
    return trio.testing.MockClock(rate=20)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    """Route cardswitch's JSON log lines to a file the test can read back."""
    path = tmp_path / "cardswitch.log"
    logs.configure(str(path))
    return path


def log_text(path: Path) -> str:
    logs.flush()  # a switch running in this process batches its log writes
    return path.read_text()


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in log_text(path).splitlines() if line.strip()]


STORES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc) -> None:
    """Tests of a module marked `both_stores` that use the journal (through `demo` or
    `journal_url`) run once per journal store."""
    if metafunc.definition.get_closest_marker("both_stores") and "journal_url" in metafunc.fixturenames:
        metafunc.parametrize("journal_url", STORES, indirect=True)


@pytest.fixture
def journal_url(request) -> str | None:
    """The switch's journal: None for SQLite in its data directory (the default), or a fresh
    PostgreSQL database's URL when the test runs on that store (`both_stores`)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return request.getfixturevalue("postgres_url")
    return None


@pytest.fixture
async def demo(nursery, log_file, tmp_path, journal_url):
    """The demo network (three issuers behind a switch) on ephemeral ports."""
    return await start_network(nursery, tmp_path / "data", journal=journal_url)


class Pki:
    """A CA made for one test, and certificates it issues, as PEM files in `directory`."""

    def __init__(self, directory: Path, name: str = "test CA"):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.authority = make_test_ca(name)
        self.ca = directory / "ca.pem"
        self.ca.write_bytes(self.authority.certificate_pem())

    def issue(self, name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
        """A certificate for common name `name` (server for `hosts`, and client): its file and its key's."""
        cert, key = self.directory / f"{name}.pem", self.directory / f"{name}-key.pem"
        issue_certificate(self.authority, name, hosts).write(cert, key)
        return cert, key


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def processes(tmp_path: Path):
    """Start cardswitch processes for the test; whatever still runs at its end is stopped."""
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def write_config(path: Path, issuers: list[dict], routes: list[dict], listeners: list[dict] | None = None) -> Path:
    """A switch config file from plain dicts (tests build networks of their own with it)."""
    listeners = listeners or [{"name": "terminals", "port": 0}]
    path.write_text(toml_text({"listeners": listeners, "issuers": issuers, "routes": routes}))
    return path


def make_bank(*cards: dict) -> Bank:
    """An emulated bank with the given cards (expiry 3012 and 1000.00 unless said otherwise)."""
    return Bank([parse_account(Table("test", "card", {"expiry": "3012", "balance": 100000, **card}))
                 for card in cards])


async def start_issuer(nursery, bank: Bank, port: int = 0, name: str = "bank") -> int:
    """An issuer emulator for `bank` on the default dialect; returns its port."""
    config = IssuerHostConfig(name=name, host="127.0.0.1", port=port, dialect=load_dialect())
    return await nursery.start(serve_issuer, config, bank)


async def until(condition, timeout: float = 10) -> None:
    """Wait until `condition()` holds, for what offers no event to wait on (a counter, SAF
    delivery, a log line); fail after `timeout` seconds.

    Looks every 10 ms. The deadline is on the real clock, so that it stays one under trio's
    MockClock too, which with autojump jumps to the next timer whenever the loop waits on a
    thread (the journal's writer: every transaction waits for it before it is sent and before it
    is answered)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise trio.TooSlowError(f"not within {timeout} s: {condition}")
        await trio.sleep(0.01)


def journal_rows(data_dir: Path, sql: str = "SELECT * FROM transactions ORDER BY trace", params: tuple = ()) -> list:
    """Rows of the journal in `data_dir`, read as an operator would (a connection of its own)."""
    with sqlite3.connect(data_dir / "journal.db") as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, params).fetchall()


@pytest.fixture
def category_dialect(tmp_path: Path) -> Path:
    """A dialect file of the default wire profile with field 48 in the category layout
    (Mastercard style: one category character, then the TLV subelements)."""
    path = tmp_path / "category.toml"
    path.write_text('name = "category"\nextends = "iso87-binary"\n\n[field48]\nlayout = "category"\n')
    return path


POSTGRES_ENV = "CARDSWITCH_TEST_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server the tests may create databases on (as a superuser): the one
    in CARDSWITCH_TEST_POSTGRES when set, else a throwaway cluster (tools/pgcluster.py) started
    once for the session and stopped at its end. Without either the test fails, never skips: a
    suite that silently skips the journal's tests would pass without testing it."""
    url = os.environ.get(POSTGRES_ENV)
    # pytest.fail outside the except blocks, so that the reason is the one line shown
    problem = None
    if url:
        try:
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as error:
            problem = f"{POSTGRES_ENV} does not answer: {(str(error).strip().splitlines() or [repr(error)])[0]}"
        if problem:
            pytest.fail(problem, pytrace=False)
        yield url
        return
    try:
        started = pgcluster.start()
    except pgcluster.ClusterError as error:
        problem = f"the tests need PostgreSQL: {error}; or set {POSTGRES_ENV} to a server's URL"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield started.url
    finally:
        pgcluster.stop(started.directory)


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database replaced by `name` (a URL, or a key=value conninfo)."""
    if server_url.startswith(("postgresql://", "postgres://")):
        return urlsplit(server_url)._replace(path="/" + name).geturl()
    return make_conninfo(server_url, dbname=name)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database of its own for the test, on `postgres_server`: its URL. Dropped
    after the test, connections still in it or not (WITH (FORCE))."""
    name = f"cardswitch_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(postgres_server, name)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def refund_and_partial_reversal(terminal, pan: str, expiry: str, refund: int, bought: int, kept: int) -> None:
    """A refund of `refund`, and a purchase of `bought` reversed in part down to `kept` (field 95's
    actual amount): the movements that settlement and reconciliation must count right. Each
    approved."""
    credit = terminal.card_request("0200", pan=pan, amount=refund, expiry=expiry, processing_code="200000")
    assert (await terminal.send(credit))["39"] == "00"
    reversed_in_part = terminal.card_request("0200", pan=pan, amount=bought, expiry=expiry)
    assert (await terminal.send(reversed_in_part))["39"] == "00"
    partial = terminal.reversal_of(reversed_in_part)
    partial["95"] = f"{kept:012d}" + "0" * 30
    assert (await terminal.send(partial))["39"] == "00"


async def serve_switch(nursery, config: Path, data_dir: Path) -> tuple[Switch, dict[str, int]]:
    """A switch on the config file `config`, serving in `nursery` with its issuer links up: the
    switch and its listeners' ports."""
    switch = Switch(load_config(config, data_dir=data_dir))
    ports = await nursery.start(switch.run)
    await switch.wait_links_up()
    return switch, ports
