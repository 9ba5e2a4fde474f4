"""The fault suite: the invariant checked the way a bank's QA checks it, with real processes.

For every card used, the issuer's books must equal what the terminals saw:

    approvals the terminals saw - reversals the terminals had acknowledged = money taken at the issuer

The issuer's books are read through the issuer itself (a balance inquiry, 0100 with processing
code 310000, sent straight to its port: field 54 carries the balance), never from process memory.
The issuer keeps its books in a file (`[issuer] books`), as a real host keeps them in its
database, so an issuer killed and restarted still knows what it approved.

Each scenario drives several terminal connections, breaks something under them (the switch killed
with kill -9, an issuer that dies between deciding and answering, the journal locked by another
process, the issuer killed with requests in flight, with and without stand-in), repairs it, lets
store-and-forward drain, then settles what the terminals got no answer for the way terminals do
(retransmission, or reversal) and checks: books == terminal view per card; every request got at
most one answer; a retransmission gets the answer the journal recorded for it, never a second
approval; `cardswitch journal check` exits 0.

Every purchase in a test has an amount of its own: the issuer emulator matches a reversal to the
debit it undoes by card and amount (emulators.bank), so distinct amounts make that match exact.

The recovery figures (what the `journal_recovered` line counted, how long the switch took to
listen again and to drain its SAF) are printed: `pytest -s tests/test_faults.py`.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from emulators.terminal import Terminal, TerminalError, open_terminal
from processes import APPROVE, EXPIRY, Network, card, cardswitch, one_issuer_network, stop_gracefully
from switch.wire.message import Message
from tools.load.processes import toml_text, wait_for_events

ROOT = Path(__file__).resolve().parents[1]
BALANCE = 100_000_000
FAST, SLOW, THIRD = APPROVE, "4761730000000029", "4761730000000037"
REVERSED_SLOWLY = "4761730000000045"  # the issuer takes its time over this card's reversals
CRASH_AMOUNT = 99_999  # the purchase the issuer dies on in the decide-then-die scenario
FAST_SAF = {"saf": {"backoff_min_ms": 50, "backoff_max_ms": 200}}
QUICK_LINK = {"reconnect_min_ms": 50, "reconnect_max_ms": 200}


# -- the network -------------------------------------------------------------------------

def network_with_books(tmp_path: Path, cards: list[dict], rules: list[dict] = (), **kwargs) -> Network:
    """A one-issuer network whose issuer keeps its books in a file (outside the switch's data
    directory: the books hold full PANs), with `rules` (amount-triggered faults)."""
    network = one_issuer_network(tmp_path, cards, switch={**FAST_SAF, **kwargs.pop("switch", {})},
                                 **{**QUICK_LINK, **kwargs})
    network.issuer_file.write_text(toml_text({
        "issuer": {"name": "bank", "port": network.issuer_port, "books": str(tmp_path / "issuer-books.json"),
                   "ledger": str(tmp_path / "issuer-ledger.jsonl")},
        "cards": cards, **({"rules": list(rules)} if rules else {})}))
    return network


def slow(pan: str, latency_ms: int, mtis: tuple[str, ...] = ("0200",)) -> dict:
    """A card the issuer answers late (its purchases, or `mtis`: balance inquiries stay quick)."""
    return card(pan=pan, latency_ms=latency_ms, fault_mtis=list(mtis))


# -- what the terminals saw ----------------------------------------------------------------

@dataclass(eq=False)
class Entry:
    """One request a terminal sent: what it got the first time, and the answer it ends up with
    (the first one, or one to a retransmission after the fault)."""

    tid: str
    request: Message
    original: Entry | None = None  # a reversal: the purchase it reverses
    response: Message | None = None
    final: Message | None = None

    @property
    def pan(self) -> str:
        return (self.original or self).request["2"]

    @property
    def amount(self) -> int:
        return int((self.original or self).request["4"])


@dataclass
class Ledger:
    """Everything the terminals sent and got, and the terminals themselves (for answers that
    arrived when nobody waited any more)."""

    entries: list[Entry] = field(default_factory=list)
    terminals: list[Terminal] = field(default_factory=list)
    amounts: itertools.count = field(default_factory=lambda: itertools.count(101))

    def taken(self) -> dict[str, int]:
        """Per card: approvals the terminals saw minus the reversals they had acknowledged (of
        approvals they saw: a reversal of a purchase given up on without an answer leaves nothing
        taken, whatever the issuer had decided)."""
        taken: dict[str, int] = {}
        for entry in self.entries:
            if entry.final is None or entry.final["39"] != "00":
                continue
            if entry.original is None:
                taken[entry.pan] = taken.get(entry.pan, 0) + entry.amount
            elif entry.original.final is not None and entry.original.final["39"] == "00":
                taken[entry.pan] = taken.get(entry.pan, 0) - entry.amount
        return taken

    def unanswered(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.response is None]


async def traffic(port: int, tid: str, pans: list[str], ledger: Ledger, stop: trio.Event,
                  reverse_every: int = 4, timeout: float = 5.0) -> None:
    """One terminal sending purchases back to back over `pans` until `stop`, reversing every
    `reverse_every`th approval it gets. A request without an answer in `timeout` is left
    unanswered (settled later); a connection that dies ends the terminal."""
    try:
        async with open_terminal("127.0.0.1", port, tid=tid, timeout=timeout) as terminal:
            ledger.terminals.append(terminal)
            offset = int(tid[-2:])  # terminals start on different cards
            for number in itertools.count():
                if stop.is_set():
                    return
                purchase = Entry(tid, terminal.card_request("0200", pan=pans[(number + offset) % len(pans)],
                                                            amount=next(ledger.amounts), expiry=EXPIRY))
                if not await _send(terminal, purchase, ledger):
                    return
                if number % reverse_every == reverse_every - 1 and purchase.response and purchase.response["39"] == "00":
                    reversal = Entry(tid, terminal.reversal_of(purchase.request), original=purchase)
                    if not await _send(terminal, reversal, ledger):
                        return
    except TerminalError:
        return  # could not connect (the switch is down)


async def _send(terminal: Terminal, entry: Entry, ledger: Ledger) -> bool:
    """False once the connection is gone."""
    ledger.entries.append(entry)
    try:
        entry.response = entry.final = await terminal.send(entry.request)
    except TerminalError as exc:
        return "within" in str(exc)  # timed out: the connection still works
    return True


async def run_traffic(network: Network, ledger: Ledger, pans: list[str], terminals: int, fault,
                      timeout: float = 5.0, prefix: str = "TF", reverse_every: int = 4,
                      reversers: tuple[str, ...] = ()) -> None:
    """`terminals` terminals sending until `fault()` (an async function breaking something) has
    returned, plus one terminal per card of `reversers` reversing every approval it gets; then
    they stop, and what they were waiting for is left unanswered."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for number in range(terminals):
            nursery.start_soon(traffic, network.switch_port, f"{prefix}{number:06d}", pans, ledger, stop,
                               reverse_every, timeout)
        for number, pan in enumerate(reversers):
            nursery.start_soon(traffic, network.switch_port, f"TR{number:06d}", [pan], ledger, stop, 1, timeout)
        await fault()
        stop.set()


def _assert_at_most_one_answer(ledger: Ledger) -> None:
    """Answers nobody waited for are answers to requests the terminal gave up on (timed out),
    at most one each; never a second answer to an answered request."""
    unanswered = {(entry.tid, entry.request["11"]) for entry in ledger.unanswered()}
    late = [(response.get("41"), response.get("11")) for t in ledger.terminals for response in t.unmatched]
    assert len(late) == len(set(late)), f"a request answered twice: {late}"
    assert set(late) <= unanswered, f"an answer to a request already answered: {set(late) - unanswered}"


# -- settling what got no answer, and retransmissions -----------------------------------------

def journal_answer(data_dir: Path, request: Message) -> tuple[str | None, str | None]:
    """(response code, approval code) the journal holds for the first transmission of `request`."""
    with sqlite3.connect(f"file:{data_dir / 'journal.db'}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT rc, approval FROM transactions WHERE tid = ? AND stan = ? AND transmitted = ? AND mti = ?"
            " AND state != 'duplicate' ORDER BY trace LIMIT 1",
            (request["41"], request["11"], request["7"], request.mti)).fetchone()
    assert row is not None, f"no journal row for {request.mti} STAN {request['11']}"
    return row[0], row[1]


async def settle(network: Network, ledger: Ledger, reverse_unanswered: bool = False) -> dict[str, int]:
    """What the terminals do once the switch answers again. A request that got no answer is
    retransmitted (or, with `reverse_unanswered`, every other unanswered purchase is reversed
    instead, as a terminal that times out does) until it gets one, which must be the one the
    journal recorded for its first transmission: 91 for what was reversed at recovery, or the
    original answer with its approval code, never a second approval. Every request that was
    answered is retransmitted too, and must get the very answer the terminal had.
    Returns how many requests of each kind were settled."""
    settled = {"retransmitted": 0, "reversed": 0, "answered_again": 0}
    by_tid: dict[str, list[Entry]] = {}
    for entry in ledger.entries:
        by_tid.setdefault(entry.tid, []).append(entry)
    for tid, entries in by_tid.items():
        async with open_terminal("127.0.0.1", network.switch_port, tid=tid, timeout=10,
                                 first_stan=900_000) as terminal:
            ledger.terminals.append(terminal)
            for number, entry in enumerate(entries):
                if entry.response is not None:
                    again = await terminal.send(entry.request.copy())
                    assert (again["39"], again.get("38")) == (entry.response["39"], entry.response.get("38")), (
                        f"retransmission of {entry.request.mti} STAN {entry.request['11']} answered differently")
                    settled["answered_again"] += 1
                    continue
                if reverse_unanswered and entry.original is None and number % 2:
                    reversal = Entry(tid, terminal.reversal_of(entry.request), original=entry)
                    reversal.response = reversal.final = await terminal.send(reversal.request)
                    assert reversal.final["39"] == "00", f"reversal of an unanswered purchase got {reversal.final['39']}"
                    ledger.entries.append(reversal)
                    entry.final = Message("0210", {"39": "91"})  # given up on: the terminal declined it
                    settled["reversed"] += 1
                    continue
                entry.final = await terminal.send(entry.request.copy())
                recorded = journal_answer(network.data_dir, entry.request)
                assert (entry.final["39"], entry.final.get("38")) == recorded, (
                    f"retransmission of unanswered {entry.request.mti} STAN {entry.request['11']}: "
                    f"got {entry.final['39']}/{entry.final.get('38')}, the journal holds {recorded}")
                if entry.original is None:
                    assert entry.final["39"] in ("00", "91"), entry.final["39"]
                settled["retransmitted"] += 1
    return settled


# -- the issuer's books, through the issuer -----------------------------------------------------

async def issuer_taken(network: Network, pans: list[str]) -> dict[str, int]:
    """Per card, the money the issuer has taken: the opening balance minus what a balance inquiry
    sent straight to the issuer's port reports."""
    taken = {}
    async with open_terminal("127.0.0.1", network.issuer_port, tid="TQABOOKS", timeout=5) as terminal:
        for pan in pans:
            answer = await terminal.send(terminal.card_request("0100", pan=pan, amount=0, expiry=EXPIRY,
                                                               processing_code="310000"))
            assert answer["39"] == "00" and answer["54"][7] == "C", answer
            taken[pan] = BALANCE - int(answer["54"][8:20])
    return taken


async def assert_books_match(network: Network, ledger: Ledger, pans: list[str]) -> dict[str, int]:
    """The issuer's books equal the terminals' view per card; and the switch's settlement says
    the same in total, and reconciles with the issuer's ledger transaction by transaction (what
    a crash interrupted, a late approval reversed, a stand-in advised later included)."""
    books = await issuer_taken(network, pans)
    seen = ledger.taken()
    assert books == {pan: seen.get(pan, 0) for pan in pans}, f"issuer books {books} != terminal view {seen}"
    await trio.to_thread.run_sync(assert_settled, network, sum(seen.values()))
    return books


def assert_settled(network: Network, taken: int) -> None:
    url = tomllib.loads(network.config.read_text())["switch"].get("journal")
    where = ["--journal", url] if url else ["--data-dir", str(network.data_dir)]
    dates = sorted({row[0] for row in _rows(url, network.data_dir, "SELECT DISTINCT business_date FROM transactions"
                                                                    " WHERE business_date IS NOT NULL")})
    net = 0
    for date in dates:
        recon = cardswitch("recon", *where, "--ledger", str(network.issuer_file.parent / "issuer-ledger.jsonl"),
                            "--issuer", "bank", "--date", date)
        assert recon.returncode == 0, recon.stdout + recon.stderr
        settled = cardswitch("settle", *where, "--date", date, "--json")
        net += sum(row["net_amount"] for row in map(json.loads, settled.stdout.splitlines()) if row["by"] == "issuer")
    assert net == taken, f"settlement net {net} != what the terminals saw taken {taken}"


def _rows(url: str | None, data_dir: Path, sql: str) -> list[tuple]:
    if url:
        import psycopg
        with psycopg.connect(url) as connection:
            return connection.execute(sql).fetchall()
    return query(data_dir, sql)


# -- the journal, the log, the checks ---------------------------------------------------------

def query(data_dir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{data_dir / 'journal.db'}?mode=ro", uri=True) as connection:
        return connection.execute(sql, params).fetchall()


def saf_open(data_dir: Path) -> int:
    return query(data_dir, "SELECT count(*) FROM saf WHERE status != 'acknowledged'")[0][0]


async def wait_saf_drained(data_dir: Path, timeout: float = 20) -> float:
    """Seconds until every SAF item is acknowledged (polling the journal)."""
    started = time.monotonic()
    while saf_open(data_dir):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"SAF not drained: {query(data_dir, 'SELECT id, kind, status, last_error FROM saf')}")
        await trio.sleep(0.02)
    return time.monotonic() - started


def journal_check(data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "journal", "check", "--data-dir", str(data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def assert_journal_check(data_dir: Path) -> None:
    check = journal_check(data_dir)
    assert check.returncode == 0, check.stdout + check.stderr


def events(log: Path, name: str) -> list[dict]:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [e for e in (json.loads(line) for line in lines if f'"event":"{name}"' in line)]


def report(scenario: str, **figures) -> None:
    print(f"\nFAULTS {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def assert_every_unknown_outcome_reversed(data_dir: Path) -> int:
    """Every purchase that was sent and ended without the issuer's own answer (dropped, timed out,
    interrupted, stood in on top of that) has exactly one acknowledged reversal of its own."""
    rows = query(data_dir, (
        "SELECT t.trace, t.state, (SELECT count(*) FROM saf s WHERE s.trace = t.trace"
        "  AND s.kind IN ('timeout_reversal', 'recovery_reversal') AND s.status = 'acknowledged')"
        " FROM transactions t WHERE t.mti = '0200' AND t.sent_at IS NOT NULL"
        " AND t.state IN ('timed_out', 'failed', 'stood_in', 'interrupted')"))
    assert all(count == 1 for _, _, count in rows), rows
    return len(rows)


# -- 1. the switch killed with kill -9 under load -------------------------------------------

async def test_switch_killed_under_load_books_match_after_restart(tmp_path, processes):
    """Eight terminals send purchases (and reverse every other approval) over two fast cards and a
    slow one, and three reverse every purchase on a card whose reversals are slow, so purchases
    and reversals are in flight at the issuer; kill -9 of the switch;
    restart; SAF drains; every unanswered request is retransmitted and gets 91 or the answer the
    journal recorded (never a second approval); books == terminal view; journal check 0."""
    pans = [FAST, SLOW, THIRD]
    cards = [card(), slow(SLOW, 300), card(pan=THIRD), slow(REVERSED_SLOWLY, 400, ("0400",))]
    network = network_with_books(tmp_path, cards, timeout_ms=2000)
    issuer, switch = processes.issuer_and_switch(network)
    ledger = Ledger()

    async def kill_switch():
        await trio.sleep(1.2)
        switch.kill()
        switch.wait(timeout=10)

    await run_traffic(network, ledger, pans, 8, kill_switch, reverse_every=2, reversers=(REVERSED_SLOWLY,) * 3)
    _assert_at_most_one_answer(ledger)
    assert ledger.unanswered(), "nothing was in flight at the crash: the test proves nothing"

    started = time.monotonic()
    switch = processes.switch(network)
    listening = time.monotonic() - started
    drained = await wait_saf_drained(network.data_dir) + listening
    (recovered,) = events(network.log, "journal_recovered")

    settled = await settle(network, ledger)
    _assert_at_most_one_answer(ledger)
    await assert_books_match(network, ledger, pans + [REVERSED_SLOWLY])
    assert stop_gracefully(switch) == 0
    assert_journal_check(network.data_dir)
    assert_every_unknown_outcome_reversed(network.data_dir)
    assert recovered["reversed"] + recovered["completed"] + recovered["never_sent"] >= 1
    report("switch kill -9 under load", requests=len(ledger.entries), unanswered_at_crash=settled["retransmitted"],
           recovered_reversed=recovered["reversed"], recovered_completed=recovered["completed"],
           recovered_never_sent=recovered["never_sent"], listener_up_s=round(listening, 3),
           saf_drained_s=round(drained, 3))


# -- 2. an issuer that dies after deciding, before answering -----------------------------------

async def test_issuer_dying_between_decision_and_answer(tmp_path, processes):
    """The issuer books a purchase (CRASH_AMOUNT) and dies before its answer leaves, with other
    purchases in flight; restarted, it gets the reversals of everything the switch had sent it
    without an answer. The terminal got 91; its retransmission gets 91 from the journal and is not
    forwarded again (the issuer would die again); books == terminal view; journal check 0."""
    pans = [FAST, SLOW]
    network = network_with_books(tmp_path, [card(), slow(SLOW, 200)], timeout_ms=2000,
                                 rules=[{"amount": CRASH_AMOUNT, "fault": "crash_after_decide",
                                         "fault_mtis": ["0200"]}])
    issuer, switch = processes.issuer_and_switch(network)
    ledger = Ledger()

    async def crash_the_issuer():
        await trio.sleep(0.6)
        async with open_terminal("127.0.0.1", network.switch_port, tid="TCRASH01", timeout=5) as terminal:
            ledger.terminals.append(terminal)
            crash = Entry("TCRASH01", terminal.card_request("0200", pan=FAST, amount=CRASH_AMOUNT, expiry=EXPIRY))
            await _send(terminal, crash, ledger)
        assert crash.response is not None and crash.response["39"] == "91", crash.response
        assert issuer.wait(timeout=5) == 70  # os._exit in the emulator: decided, then died
        await trio.sleep(0.3)  # traffic meets the issuer down

    await run_traffic(network, ledger, pans, 3, crash_the_issuer)
    _assert_at_most_one_answer(ledger)

    started = time.monotonic()
    processes.issuer(network)
    await wait_saf_drained(network.data_dir)
    drained = time.monotonic() - started  # from starting the issuer process
    settled = await settle(network, ledger)
    await assert_books_match(network, ledger, pans)
    assert stop_gracefully(switch) == 0  # (a duplicate's row is written, not waited for)
    crash_rows = query(network.data_dir, "SELECT state FROM transactions WHERE amount = ? AND mti = '0200'",
                       (CRASH_AMOUNT,))
    assert crash_rows == [("failed",), ("duplicate",)], crash_rows  # answered from the journal, not resent
    assert_journal_check(network.data_dir)
    reversed_ = assert_every_unknown_outcome_reversed(network.data_dir)
    report("issuer dies after deciding", requests=len(ledger.entries), reversed_after_issuer_restart=reversed_,
           saf_drained_after_issuer_restart_s=round(drained, 3), **settled)


# -- 3. the journal locked by another process --------------------------------------------------

LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


async def test_journal_locked_by_another_process(tmp_path, processes):
    """Another process holds an exclusive write lock on the journal for 6 s while traffic runs:
    terminals time out (allowed: nothing may be answered before it is on disk), nothing is
    dropped; once the lock is gone every request completes, the terminals reverse half of what
    they got no answer for and retransmit the rest, and nothing was approved twice: books ==
    terminal view, at most one answer per request, journal check 0."""
    pans = [FAST, SLOW]
    network = network_with_books(tmp_path, [card(), slow(SLOW, 100)], timeout_ms=2000)
    issuer, switch = processes.issuer_and_switch(network)
    ledger = Ledger()
    locker: list[subprocess.Popen] = []

    async def lock_the_journal():
        await trio.sleep(0.4)
        process = subprocess.Popen([sys.executable, "-c", LOCKER, str(network.data_dir / "journal.db"), "6"],
                                   stdout=subprocess.PIPE, text=True)
        locker.append(process)
        assert await trio.to_thread.run_sync(process.stdout.readline) == "locked\n"
        await trio.to_thread.run_sync(process.wait)
        await trio.sleep(0.5)  # traffic goes on after the lock is gone

    try:
        await run_traffic(network, ledger, pans, 4, lock_the_journal, timeout=2.0)
    finally:
        for process in locker:
            if process.poll() is None:
                process.kill()
    assert locker[0].returncode == 0
    assert ledger.unanswered(), "no terminal waited on the locked journal: the test proves nothing"
    wait_for_events(network.log, "journal_resumed", 1, switch)
    assert events(network.log, "journal_stalled")
    # everything the switch took in completes once the journal writes again
    deadline = time.monotonic() + 15
    while query(network.data_dir, "SELECT count(*) FROM transactions WHERE state = 'pending'")[0][0]:
        assert time.monotonic() < deadline, "transactions still pending after the lock was released"
        await trio.sleep(0.05)
    await wait_saf_drained(network.data_dir)
    await trio.sleep(0.2)  # late answers reach the terminals that gave up on them
    _assert_at_most_one_answer(ledger)

    settled = await settle(network, ledger, reverse_unanswered=True)
    await wait_saf_drained(network.data_dir)
    await assert_books_match(network, ledger, pans)
    assert stop_gracefully(switch) == 0
    assert_journal_check(network.data_dir)
    report("journal locked 6 s", requests=len(ledger.entries), stalls=len(events(network.log, "journal_stalled")),
           **settled)


# -- 4. the issuer link dropped with requests in flight ---------------------------------------------

@pytest.mark.parametrize("stand_in", [None, {"max_amount": 100_000, "daily_count": 10_000, "daily_amount": 10**9}],
                         ids=["no_stand_in", "stand_in"])
async def test_issuer_killed_with_requests_in_flight(tmp_path, processes, stand_in):
    """kill -9 of the issuer with requests in flight on a slow and a fast card; traffic goes on
    while it is down (91, or stand-in approvals advised through SAF); restarted, the issuer gets
    every in-flight request's reversal (stand-in approvals never stand on top of an unreversed
    request) and the stand-in advices; books == terminal view; journal check 0."""
    pans = [FAST, SLOW, THIRD]
    network = network_with_books(tmp_path, [card(), slow(SLOW, 400), card(pan=THIRD)], timeout_ms=2000,
                                 **({"stand_in": stand_in} if stand_in else {}))
    issuer, switch = processes.issuer_and_switch(network)
    ledger = Ledger()

    async def kill_the_issuer():
        await trio.sleep(0.8)
        issuer.kill()
        issuer.wait(timeout=10)
        await trio.sleep(0.4)  # traffic meets the issuer down

    await run_traffic(network, ledger, pans, 4, kill_the_issuer)
    _assert_at_most_one_answer(ledger)
    assert not ledger.unanswered()  # the switch answered everything itself
    dropped = query(network.data_dir, "SELECT count(*) FROM transactions WHERE mti = '0200' AND sent_at IS NOT NULL"
                                      " AND state IN ('failed', 'stood_in', 'timed_out')")[0][0]
    assert dropped, "nothing was in flight when the issuer died: the test proves nothing"
    stood_in = query(network.data_dir, "SELECT count(*) FROM transactions WHERE state = 'stood_in'")[0][0]
    assert bool(stood_in) == bool(stand_in)

    started = time.monotonic()
    processes.issuer(network)
    await wait_saf_drained(network.data_dir)
    drained = time.monotonic() - started  # from starting the issuer process
    await settle(network, ledger)
    await assert_books_match(network, ledger, pans)
    assert stop_gracefully(switch) == 0
    assert_journal_check(network.data_dir)
    reversed_ = assert_every_unknown_outcome_reversed(network.data_dir)
    report(f"issuer kill -9 in flight ({'stand-in' if stand_in else 'no stand-in'})", requests=len(ledger.entries),
           sent_without_answer_reversed=reversed_, stood_in=stood_in,
           saf_drained_after_issuer_restart_s=round(drained, 3))
