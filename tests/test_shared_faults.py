"""Two switch processes on one PostgreSQL journal, one of them killed with kill -9 mid-run: the
invariant checked as in tests/test_faults.py (the issuer's books, read through the issuer, equal
what the terminals saw), with terminals that reconnect for every request and so spread a
purchase and its reversal or retransmission over both instances.

The survivor must find the dead instance (its heartbeat stops: `instance_lease_ms`), reverse what
it left in flight, deliver its queued reversals, and answer retransmissions of its requests as
the journal recorded them: never a second approval, every reversal matched."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import psycopg
import trio

from conftest import read_events
from emulators.network import start_network
from emulators.terminal import TerminalError, open_terminal
from processes import APPROVE, EXPIRY, card, stop_gracefully
from test_faults import ROOT, Entry, Ledger, assert_books_match, events, network_with_books, report, slow
from tools import pgcluster
from tools.load.processes import free_port, wait_for_events, wait_for_port

FAST, SLOW, THIRD = APPROVE, "4761730000000029", "4761730000000037"
SLOWEST = "4761730000000045"  # answered after 2 s: certainly in flight when its instance is killed
LEASE_MS = 1000


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql, params).fetchall()


async def roaming_terminal(tid: str, offset: int, ports: list[int], dead: set[int], pans: list[str], ledger: Ledger,
                           stop: trio.Event, amounts: itertools.count) -> None:
    """Purchases, each on a new connection to the next instance (a terminal that reconnects),
    every other approval reversed on a new connection to the instance after that. Terminals
    start at different cards (`offset`), so slow purchases are in flight at both instances."""
    stans = itertools.count(1)
    for number in itertools.count(offset):
        if stop.is_set():
            return
        pan = pans[number % len(pans)]
        purchase = await _send(tid, _pick(ports, dead, number // len(pans) + number), next(stans), ledger,
                               lambda t: t.card_request("0200", pan=pan, amount=next(amounts), expiry=EXPIRY))
        if number % 2 and purchase is not None and purchase.response is not None and purchase.response["39"] == "00":
            await _send(tid, _pick(ports, dead, number // len(pans) + number + 1), next(stans), ledger,
                        lambda t: t.reversal_of(purchase.request), original=purchase)


def _pick(ports: list[int], dead: set[int], number: int) -> int:
    port = ports[number % len(ports)]
    return port if port not in dead else next(p for p in ports if p not in dead)


async def _send(tid: str, port: int, stan: int, ledger: Ledger, build, original: Entry | None = None) -> Entry | None:
    """One request on its own connection; None when it could not even connect."""
    try:
        async with open_terminal("127.0.0.1", port, tid=tid, first_stan=stan, timeout=5) as terminal:
            entry = Entry(tid, build(terminal), original=original)
            ledger.entries.append(entry)
            ledger.terminals.append(terminal)
            try:
                entry.response = entry.final = await terminal.send(entry.request)
            except TerminalError:
                pass  # the instance died with it in flight: settled below
            return entry
    except (TerminalError, OSError):
        return None


async def settle(port: int, url: str, ledger: Ledger) -> dict[str, int]:
    """At the surviving instance: every answered request again (the same answer), every
    unanswered one retransmitted until answered as the journal recorded its first transmission
    (91 for what was reversed when its instance died), never a second approval."""
    settled = {"answered_again": 0, "retransmitted": 0}
    for entry in ledger.entries:
        async with open_terminal("127.0.0.1", port, tid=entry.tid, first_stan=900_000, timeout=10) as terminal:
            again = await terminal.send(entry.request.copy())
        request = entry.request
        if entry.response is not None:
            assert (again["39"], again.get("38")) == (entry.response["39"], entry.response.get("38")), (
                f"retransmission of {request.mti} STAN {request['11']} answered differently")
            settled["answered_again"] += 1
            continue
        # The first transmission's answer; one interrupted before it reached the issuer has none,
        # and its retransmission was processed as new.
        recorded = query(url, "SELECT rc, approval FROM transactions WHERE tid = %s AND stan = %s"
                              " AND transmitted = %s AND mti = %s AND state NOT IN ('duplicate', 'rejected')"
                              " AND NOT (state = 'interrupted' AND rc IS NULL) ORDER BY created_at LIMIT 1",
                         (request["41"], request["11"], request["7"], request.mti))[0]
        assert (again["39"], again.get("38")) == recorded, f"{request.mti} STAN {request['11']}: {again['39']}, {recorded}"
        entry.final = again
        settled["retransmitted"] += 1
    return settled


async def test_one_of_two_instances_killed_mid_run_loses_nothing(tmp_path, processes, postgres_url):
    pans = [FAST, SLOW, THIRD]
    network = network_with_books(tmp_path, [card(), slow(SLOW, 400), card(pan=THIRD), slow(SLOWEST, 2000)],
                                 timeout_ms=3000,
                                 switch={"journal": postgres_url, "instance_lease_ms": LEASE_MS})
    second_port, second_log = free_port(), tmp_path / "switch-b.log"
    second_config = tmp_path / "switch-b.toml"
    second_config.write_text(network.config.read_text().replace(f"port = {network.switch_port}\n",
                                                                f"port = {second_port}\n"))
    _, first = processes.issuer_and_switch(network)
    second = processes.start("switch-b", "serve", "--config", str(second_config), "--log-file", str(second_log))
    wait_for_port(second_port, second, "the second instance")
    wait_for_events(second_log, "link_up", 1, second)

    ledger, stop, dead = Ledger(), trio.Event(), set()
    ports = [network.switch_port, second_port]
    amounts = itertools.count(101)  # the issuer matches reversals by card and amount: one amount each
    async with trio.open_nursery() as nursery:
        for number in range(6):
            nursery.start_soon(roaming_terminal, f"TS{number:06d}", number, ports, dead, pans, ledger, stop, amounts)
        await trio.sleep(1.2)
        nursery.start_soon(_send, "TSSLOW01", network.switch_port, 1, ledger,
                           lambda t: t.card_request("0200", pan=SLOWEST, amount=next(amounts), expiry=EXPIRY))
        await trio.sleep(0.3)
        first.kill()
        first.wait(timeout=10)
        killed = time.monotonic()
        dead.add(network.switch_port)
        await trio.sleep(1.5)
        stop.set()
    in_flight = [entry for entry in ledger.entries if entry.response is None]
    assert in_flight, "nothing was in flight at the kill: the test proves nothing"

    with trio.fail_after(15):
        while not events(second_log, "instances_taken_over"):
            await trio.sleep(0.05)
    taken_over = time.monotonic() - killed
    with trio.fail_after(20):
        while query(postgres_url, "SELECT count(*) FROM saf WHERE status != 'acknowledged'")[0][0]:
            await trio.sleep(0.05)
    drained = time.monotonic() - killed
    (takeover,) = events(second_log, "instances_taken_over")

    settled = await settle(second_port, postgres_url, ledger)
    await assert_books_match(network, ledger, pans + [SLOWEST])
    check = subprocess.run([sys.executable, "-m", "switch.cli", "journal", "check", "--journal", postgres_url],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    reversals = [entry for entry in ledger.entries if entry.original is not None and entry.final is not None]
    assert all(entry.final["39"] == "00" for entry in reversals), "a reversal was not matched to its original"
    assert stop_gracefully(second) == 0  # before its database goes with the test
    report("one of two instances killed", requests=len(ledger.entries), in_flight_at_kill=len(in_flight),
           reversals=len(reversals), recovered_reversed=takeover["reversed"],
           recovered_completed=takeover["completed"], recovered_never_sent=takeover["never_sent"],
           taken_over_s=round(taken_over, 2), saf_drained_s=round(drained, 2), **settled)


async def test_the_database_gone_for_a_while_answers_late_and_loses_nothing(nursery, tmp_path, log_file):
    """The journal's PostgreSQL server stops (immediate shutdown) and comes back 2 s later: a
    purchase sent meanwhile is not answered until its row is in the journal again, then
    answered once; the issuer is debited once for it."""
    with pgcluster.cluster() as own:
        network = await start_network(nursery, tmp_path / "data", journal=own.url)
        account = network.issuers["bank_a"][1].accounts[APPROVE]
        before = account.balance
        async with open_terminal("127.0.0.1", network.ports["terminals"]) as terminal:
            assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
            await trio.to_thread.run_sync(pgcluster.interrupt, own.directory)
            answers: list[str] = []

            async def purchase() -> None:
                answers.append((await terminal.send(terminal.card_request("0200", pan=APPROVE, amount=200,
                                                                          expiry=EXPIRY), timeout=30))["39"])

            async with trio.open_nursery() as waiting:
                waiting.start_soon(purchase)
                await trio.sleep(2)
                assert answers == []  # no answer the journal does not hold
                await trio.to_thread.run_sync(pgcluster.resume, own.directory)
        assert answers == ["00"]
        assert account.balance == before - 300
        network.switch.shutdown()
        await network.switch.stopped.wait()
    names = [event["event"] for event in read_events(log_file)]
    assert "journal_stalled" in names and "journal_resumed" in names
