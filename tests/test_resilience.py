"""When things go wrong, with real processes: an issuer killed mid-traffic, an issuer answering
after the timeout, the switch killed with kill -9 and restarted with SAF items pending, a burst
of retransmissions. After each: every request got exactly one response, and the journal's
invariants hold (`cardswitch journal check`: every row final, every late approval reversed, no
PAN in the data directory)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import trio

from emulators.terminal import open_terminal
from processes import APPROVE, EXPIRY, card, one_issuer_network, stop_gracefully
from tools.load.processes import wait_for_events

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def journal_check(data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "journal", "check", "--data-dir", str(data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def query(data_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "journal.db") as connection:
        return connection.execute(sql).fetchall()


async def test_issuer_killed_mid_traffic_and_a_burst_of_retransmissions(tmp_path, processes):
    network = one_issuer_network(tmp_path, [card()], timeout_ms=1000)
    issuer, switch = processes.issuer_and_switch(network)

    sent, answered = 0, []
    async with open_terminal("127.0.0.1", network.switch_port, tid="TBURST01") as terminal:
        request = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
        async with trio.open_nursery() as nursery:
            async def retransmit():
                answered.append((await terminal.send(request.copy()))["39"])
            for _ in range(20):
                nursery.start_soon(retransmit)
        sent += 20

    traffic_flowing, killed, stop = trio.Event(), trio.Event(), trio.Event()
    declined_after_kill = 0

    async def terminal_traffic(number: int):
        nonlocal sent, declined_after_kill
        async with open_terminal("127.0.0.1", network.switch_port, tid=f"TLOAD{number:03d}") as terminal:
            while not stop.is_set():
                sent += 1
                answered.append((await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"])
                if len(answered) >= 20 + 50:
                    traffic_flowing.set()
                if killed.is_set() and answered[-1] == "91":
                    declined_after_kill += 1
                    if declined_after_kill >= 10:
                        stop.set()

    with trio.fail_after(30):  # real time: real processes
        async with trio.open_nursery() as nursery:
            for number in range(5):
                nursery.start_soon(terminal_traffic, number)
            await traffic_flowing.wait()
            issuer.kill()  # kill -9, mid-traffic
            killed.set()
    assert len(answered) == sent  # every request got exactly one response
    assert answered[:20] == ["00"] * 20
    assert set(answered) == {"00", "91"} and answered[-1] == "91"
    # What was in flight when the issuer died may have been approved: reversed once it is back.
    processes.issuer(network)
    wait_for(lambda: query(network.data_dir, "SELECT count(*) FROM saf WHERE status != 'acknowledged'")[0][0] == 0,
             "the reversals of what was in flight delivered")
    assert stop_gracefully(switch) == 0
    assert query(network.data_dir, "SELECT count(*) FROM transactions")[0][0] == sent
    assert query(network.data_dir, "SELECT count(*) FROM transactions WHERE state = 'duplicate'")[0][0] == 19
    check = journal_check(network.data_dir)
    assert check.returncode == 0, check.stdout


async def test_issuer_answering_after_the_timeout_gets_its_approval_reversed(tmp_path, processes):
    """Each timed-out request is reversed at once; the late approvals find their reversals."""
    network = one_issuer_network(tmp_path, [card(latency_ms=600)], timeout_ms=200)
    _, switch = processes.issuer_and_switch(network)
    async with open_terminal("127.0.0.1", network.switch_port) as terminal:
        answers = [(await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"]
                   for amount in (100, 200, 300)]
    assert answers == ["91"] * 3
    wait_for_events(network.log, "saf_acknowledged", 3, switch)  # the three reversals
    wait_for_events(network.log, "issuer_response_unmatched", 3, switch)  # the three late approvals
    assert stop_gracefully(switch) == 0
    assert query(network.data_dir, "SELECT late_rc, state FROM transactions") == [("00", "timed_out")] * 3
    assert query(network.data_dir, "SELECT kind, mti, status FROM saf") == [("timeout_reversal", "0420", "acknowledged")] * 3
    check = journal_check(network.data_dir)
    assert check.returncode == 0, check.stdout


async def test_switch_killed_with_saf_pending_delivers_after_restart(tmp_path, processes):
    stand_in = {"max_amount": 10000, "daily_count": 10, "daily_amount": 100000}
    network = one_issuer_network(tmp_path, [card()], switch={"saf": {"backoff_min_ms": 50, "backoff_max_ms": 200}},
                                 reconnect_min_ms=50, reconnect_max_ms=200, stand_in=stand_in)
    data_dir = network.data_dir
    switch = processes.switch(network)
    async with open_terminal("127.0.0.1", network.switch_port) as terminal:
        answers = [await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY) for amount in (100, 200, 300)]
    assert [a["39"] for a in answers] == ["00"] * 3 and all(a["38"].startswith("S") for a in answers)
    switch.kill()  # kill -9 with three stand-in advices queued
    switch.wait(timeout=10)
    assert query(data_dir, "SELECT status FROM saf") == [("queued",)] * 3

    processes.issuer(network)
    switch = processes.switch(network)
    wait_for(lambda: query(data_dir, "SELECT count(*) FROM saf WHERE status = 'acknowledged'")[0][0] == 3,
             "SAF drained after restart")
    assert query(data_dir, "SELECT DISTINCT response_code FROM saf") == [("00",)]
    async with open_terminal("127.0.0.1", network.switch_port) as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    assert stop_gracefully(switch) == 0
    check = journal_check(data_dir)
    assert check.returncode == 0, check.stdout


async def test_a_request_in_flight_at_a_crash_is_reversed_at_restart(tmp_path, processes):
    """kill -9 while the issuer decides: the restarted switch reverses what it had sent (it may
    have been approved), under the STAN the issuer knows it by; the terminal's retransmission
    gets 91 from the journal and its reversal 00, neither forwarded again."""
    network = one_issuer_network(tmp_path, [card(latency_ms=1500)], timeout_ms=5000)
    issuer, switch = processes.issuer_and_switch(network)
    async with open_terminal("127.0.0.1", network.switch_port, first_stan=700) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        with trio.move_on_after(0.5):
            await terminal.send(purchase)
    switch.kill()
    switch.wait()
    await trio.sleep(1.5)  # the issuer approves meanwhile; its answer has nowhere to go
    switch = processes.switch(network)
    wait_for(lambda: query(network.data_dir, "SELECT status FROM saf") == [("acknowledged",)],
             "the recovery reversal delivered")
    async with open_terminal("127.0.0.1", network.switch_port, first_stan=50) as terminal:
        assert (await terminal.send(purchase))["39"] == "91"
        assert (await terminal.send(terminal.reversal_of(purchase)))["39"] == "00"
    assert stop_gracefully(switch) == 0
    rows = query(network.data_dir, "SELECT mti, state, rc, sent_as FROM transactions ORDER BY trace")
    (mti, state, rc, sent_as), retransmission, reversal = rows
    assert (mti, state, rc) == ("0200", "interrupted", "91")
    assert sent_as.startswith("0200") and sent_as[4:10] != purchase["11"]  # the switch's STAN
    assert retransmission[:3] == ("0200", "duplicate", "91")
    assert reversal[:3] == ("0400", "approved", "00") and reversal[3] is None  # not forwarded
    assert query(network.data_dir, "SELECT kind FROM saf") == [("recovery_reversal",)]
    check = journal_check(network.data_dir)
    assert check.returncode == 0, check.stdout
