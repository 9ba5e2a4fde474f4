"""When things go wrong, with real processes: an issuer killed mid-traffic, an issuer answering
after the timeout, the switch killed with kill -9 and restarted with SAF items pending, a burst
of retransmissions. After each: every request got exactly one response, and the journal's
invariants hold (`cardswitch journal check`: every row final, every late approval reversed, no
PAN in the data directory)."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import trio

from conftest import free_port, write_config
from emulators.terminal import open_terminal

ROOT = Path(__file__).resolve().parents[1]
APPROVE = "4761730000000011"
EXPIRY = "3012"


class Processes:
    """The processes a test started; all are stopped (killed if need be) at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen] = []

    def start(self, *args: str, log: Path | None = None) -> subprocess.Popen:
        command = [sys.executable, "-m", "switch.cli", *args]
        process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.started.append(process)
        return process

    def issuer(self, port: int, cards: str, name: str = "bank") -> subprocess.Popen:
        path = self.tmp_path / f"issuer-{port}.toml"
        path.write_text(f"[issuer]\nname = '{name}'\nport = {port}\n\n{cards}")
        process = self.start("issuer", "--config", str(path))
        wait_for(lambda: port_open(port), f"issuer on {port}")
        return process

    def switch(self, config: Path, log: Path, port: int) -> subprocess.Popen:
        process = self.start("serve", "--config", str(config), "--log-file", str(log))
        wait_for(lambda: port_open(port), f"switch on {port}")
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


def journal_check(data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "journal", "check", "--data-dir", str(data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def query(data_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "journal.db") as connection:
        return connection.execute(sql).fetchall()


def stop_gracefully(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=15)


CARD = f"[[cards]]\npan = '{APPROVE}'\nexpiry = '{EXPIRY}'\nbalance = 100000000\n"


def switch_config(tmp_path: Path, issuer_port: int, switch_port: int, settings: str = "", **issuer) -> Path:
    """A one-issuer switch config journaling to tmp_path/data; `settings` go under [switch]."""
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port, **issuer}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": switch_port}])
    config.write_text(f"[switch]\ndata_dir = '{tmp_path / 'data'}'\n{settings}\n" + config.read_text())
    return config


async def test_issuer_killed_mid_traffic_and_a_burst_of_retransmissions(tmp_path):
    processes = Processes(tmp_path)
    issuer_port, switch_port = free_port(), free_port()
    data_dir, log = tmp_path / "data", tmp_path / "switch.log"
    config = switch_config(tmp_path, issuer_port, switch_port, timeout_ms=1000)
    try:
        issuer = processes.issuer(issuer_port, CARD)
        switch = processes.switch(config, log, switch_port)
        wait_for(lambda: any(e["event"] == "link_up" for e in events(log)), "link up")

        sent, answered = 0, []
        async with open_terminal("127.0.0.1", switch_port, tid="TBURST01") as terminal:
            request = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
            async with trio.open_nursery() as nursery:
                async def retransmit():
                    answered.append((await terminal.send(request.copy()))["39"])
                for _ in range(20):
                    nursery.start_soon(retransmit)
            sent += 20

        async def terminal_traffic(number: int, stop_at: float):
            nonlocal sent
            async with open_terminal("127.0.0.1", switch_port, tid=f"TLOAD{number:03d}") as terminal:
                while trio.current_time() < stop_at:
                    sent += 1
                    answered.append((await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"])

        stop_at = trio.current_time() + 1.5
        async with trio.open_nursery() as nursery:
            for number in range(5):
                nursery.start_soon(terminal_traffic, number, stop_at)
            await trio.sleep(0.5)
            issuer.kill()  # kill -9, mid-traffic
        assert len(answered) == sent  # every request got exactly one response
        assert answered[:20] == ["00"] * 20
        assert set(answered) == {"00", "91"} and answered[-1] == "91"
        assert stop_gracefully(switch) == 0
        assert query(data_dir, "SELECT count(*) FROM transactions")[0][0] == sent
        assert query(data_dir, "SELECT count(*) FROM transactions WHERE state = 'duplicate'")[0][0] == 19
        check = journal_check(data_dir)
        assert check.returncode == 0, check.stdout
    finally:
        processes.stop_all()


async def test_issuer_answering_after_the_timeout_gets_its_approval_reversed(tmp_path):
    processes = Processes(tmp_path)
    issuer_port, switch_port = free_port(), free_port()
    data_dir, log = tmp_path / "data", tmp_path / "switch.log"
    config = switch_config(tmp_path, issuer_port, switch_port, timeout_ms=200)
    try:
        processes.issuer(issuer_port, CARD + "latency_ms = 600\n")
        switch = processes.switch(config, log, switch_port)
        wait_for(lambda: any(e["event"] == "link_up" for e in events(log)), "link up")
        async with open_terminal("127.0.0.1", switch_port) as terminal:
            answers = [(await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"]
                       for amount in (100, 200, 300)]
        assert answers == ["91"] * 3
        wait_for(lambda: len([e for e in events(log) if e["event"] == "saf_acknowledged"]) == 3, "reversals")
        assert stop_gracefully(switch) == 0
        assert query(data_dir, "SELECT late_rc, state FROM transactions") == [("00", "timed_out")] * 3
        assert query(data_dir, "SELECT kind, mti, status FROM saf") == [("late_reversal", "0420", "acknowledged")] * 3
        check = journal_check(data_dir)
        assert check.returncode == 0, check.stdout
    finally:
        processes.stop_all()


async def test_switch_killed_with_saf_pending_delivers_after_restart(tmp_path):
    processes = Processes(tmp_path)
    issuer_port, switch_port = free_port(), free_port()
    data_dir, log = tmp_path / "data", tmp_path / "switch.log"
    stand_in = {"max_amount": 10000, "daily_count": 10, "daily_amount": 100000}
    config = switch_config(tmp_path, issuer_port, switch_port,
                           settings="[switch.saf]\nbackoff_min_ms = 50\nbackoff_max_ms = 200\n",
                           reconnect_min_ms=50, reconnect_max_ms=200, stand_in=stand_in)
    try:
        switch = processes.switch(config, log, switch_port)
        async with open_terminal("127.0.0.1", switch_port) as terminal:
            answers = [await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY) for amount in (100, 200, 300)]
        assert [a["39"] for a in answers] == ["00"] * 3 and all(a["38"].startswith("S") for a in answers)
        switch.kill()  # kill -9 with three stand-in advices queued
        switch.wait(timeout=10)
        assert query(data_dir, "SELECT status FROM saf") == [("queued",)] * 3

        processes.issuer(issuer_port, CARD)
        switch = processes.switch(config, log, switch_port)
        wait_for(lambda: query(data_dir, "SELECT count(*) FROM saf WHERE status = 'acknowledged'")[0][0] == 3,
                 "SAF drained after restart")
        assert query(data_dir, "SELECT DISTINCT response_code FROM saf") == [("00",)]
        async with open_terminal("127.0.0.1", switch_port) as terminal:
            assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
        assert stop_gracefully(switch) == 0
        check = journal_check(data_dir)
        assert check.returncode == 0, check.stdout
    finally:
        processes.stop_all()
