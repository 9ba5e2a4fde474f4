"""What an operator sees on the console: `demo --serve` (admin port, log file, per-second
summary, what happens to its data directory), `serve`'s start-up line, and refused option
combinations."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from processes import card, one_issuer_network, serve_args
from tools.load.processes import free_port, free_ports, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "switch.cli"]


def read_until(stream, prefix: str, seen: list[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    for line in stream:
        seen.append(line)
        if line.startswith(prefix) or re.match(prefix, line):
            return line
        assert time.monotonic() < deadline, f"no {prefix!r} line in: {seen}"
    raise AssertionError(f"no {prefix!r} line before the end of the output: {seen}")


@pytest.mark.parametrize("keep", [False, True])
def test_demo_serve_console(tmp_path, keep):
    port = free_ports(2)  # the demo listens on PORT and PORT+1
    options = ["--data-dir", str(tmp_path / "data")] if keep else []
    demo = subprocess.Popen([*COMMAND, "demo", "--serve", "--port", str(port), *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    seen: list[str] = []
    try:
        admin = read_until(demo.stdout, "admin: ", seen)
        assert re.match(r"admin: 127\.0\.0\.1:\d+ ", admin)
        token = Path(read_until(demo.stdout, "admin token: ", seen).split(": ", 1)[1].strip())
        data_dir = Path(read_until(demo.stdout, "journal: ", seen).split(": ", 1)[1].strip())
        read_until(demo.stdout, "demo network up", seen)
        assert (data_dir / "switch.log").exists()
        assert token == data_dir / "admin.token" and stat.S_IMODE(token.stat().st_mode) == 0o600
        status = subprocess.run([*COMMAND, "admin", "status", "--admin", admin.split()[1], "--data-dir",
                                 str(data_dir)], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        tokenless = subprocess.run([*COMMAND, "admin", "status", "--admin", admin.split()[1], "--data-dir",
                                    str(tmp_path / "elsewhere")], capture_output=True, text=True, timeout=30)
        assert tokenless.returncode == 2 and "admin.token" in tokenless.stderr
        purchase = subprocess.run([*COMMAND, "terminal", "purchase", "--port", str(port), "--pan",
                                   "4761730000000011", "--expiry", "3012", "--amount", "5", "--json"],
                                  capture_output=True, text=True, timeout=30)
        assert json.loads(purchase.stdout)["39"] == "00"
        summary = read_until(demo.stdout, r"\d\d:\d\d:\d\d  \d+ txn/s  ", seen)
        assert "00:1" in summary and "in flight 0" in summary
        log = (data_dir / "switch.log").read_text()
        assert '"event":"txn"' in log
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0
    assert '"event":"txn"' not in "".join(seen) + out + err  # the log is in the file, not the console
    if keep:
        assert f"demo: data directory kept at {data_dir}" in out
        assert (data_dir / "switch.log").exists()
    else:
        assert f"demo: temporary data directory {data_dir} removed" in out
        assert not data_dir.exists()


@pytest.mark.parametrize("args, expected", [
    (["--json"], "--json: only with --cards or --terminals"),
    (["--port", "9000"], "--port: only with --serve"),
    (["--metrics-port", "9000"], "--metrics-port: only with --serve"),
    (["--admin-port", "9000"], "--admin-port: only with --serve"),
    (["--cards", "--port", "9000"], "--port: not with --cards"),
    (["--cards", "--data-dir", "x"], "--data-dir: not with --cards"),
    (["--terminals", "--admin-port", "9000"], "--admin-port: not with --terminals"),
    (["--serve", "--workers", "2"], "--workers 2: the workers share one journal: add --journal postgresql://"),
    (["--workers", "2", "--journal", "postgresql://x/y"], "--workers: a number of switch processes, 2 or more, only with --serve"),
    (["--journal", "sqlite:///x"], "--journal: expected a postgresql:// URL"),
    (["--serve", "--workers", "2", "--journal", "postgresql://x/y", "--tls"], "--tls: not with --workers"),
])
def test_demo_refuses_options_that_need_another(args, expected):
    result = subprocess.run([*COMMAND, "demo", *args], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr


def test_serve_prints_one_startup_line_while_logging_to_a_file(tmp_path):
    admin_port, metrics_port = free_port(), free_port()
    network = one_issuer_network(tmp_path, [card()],
                                 switch={"admin_port": admin_port, "metrics_port": metrics_port})
    switch = subprocess.Popen([*COMMAND, *serve_args(network)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        wait_for_port(network.switch_port, switch, "the switch")
        line = switch.stdout.readline()  # type: ignore[union-attr]
        switch.send_signal(signal.SIGTERM)
        out, err = switch.communicate(timeout=30)
    finally:
        if switch.poll() is None:
            switch.kill()
            switch.wait()
    assert line == (f"cardswitch serving: listeners terminals 127.0.0.1:{network.switch_port}; issuers bank; "
                    f"1 route; admin 127.0.0.1:{admin_port}; metrics 127.0.0.1:{metrics_port}\n")
    assert out == "" and err == ""  # nothing else: the log is in its file
    assert network.log.exists()
