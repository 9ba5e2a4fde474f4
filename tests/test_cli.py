"""The command line as a user meets it: the demo, bad configs and bad usage, a real `serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulators.cli.demo import SCRIPT
from tools.load.processes import free_port
from processes import card, one_issuer_network

ROOT = Path(__file__).resolve().parents[1]


def cardswitch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_demo_runs_every_scripted_outcome():
    result = cardswitch("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SCRIPT)} of {len(SCRIPT)} outcomes as expected" in result.stdout
    assert "4761730000000011" not in result.stdout  # PANs are masked in the table


def test_demo_cards_as_json():
    result = cardswitch("demo", "--cards", "--json")
    cards = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert {"pan", "expiry", "issuer", "pin", "cvv2", "outcome"} <= set(cards[0])
    assert any(card["outcome"].startswith("timeout") for card in cards)


@pytest.mark.parametrize("content, expected", [
    ("[[listeners]]\nport = 'x'\n", "listeners[0].port: a port number from 0 to 65535"),
    ("[[listeners]]\nport = 1\n[[issuers]]\nname = 'a'\nport = 2\ndialect = 'nope'\n", "dialect: a dialect file"),
    ("[[listeners]]\nport = 1\n[[routes]]\nprefix = '47x'\nissuer = 'a'\n", "routes[0].prefix: a string of 1 to 19 digits"),
    ("[[listeners]]\nport = 1\n[[routes]]\nprefix = '47'\nissuer = 'ghost'\n", "routes[0].issuer: one of the defined issuers"),
    ("[[listeners]]\nport = 1\ncolour = 'red'\n", "listeners[0].colour: not a known key"),
    ("[[listeners]\n", "(file): valid TOML"),
    ("", "listeners: at least one [[listeners]] table"),
    ("[[listeners]]\nname = 'pos'\nport = 1\n[[listeners]]\nname = 'pos'\nport = 2\n",
     "listeners: unique names, but 'pos' appears twice"),
    ("[[listeners]]\nport = 1\n[[issuers]]\nname = 'a'\nport = 2\n[[issuers]]\nname = 'a'\nport = 3\n",
     "issuers: unique names, but 'a' appears twice"),
])
def test_bad_config_is_one_line_naming_file_and_key_with_exit_2(tmp_path, content, expected):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = cardswitch("serve", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(config) in result.stderr and expected in result.stderr


def test_missing_config_file_and_bad_usage_exit_2(tmp_path):
    missing = cardswitch("serve", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and "none.toml: (file): an existing TOML file" in missing.stderr
    usage = cardswitch("terminal", "purchase", "--amount", "12,50", "--pan", "4761730000000011", "--expiry", "3012")
    assert usage.returncode == 2 and "--amount" in usage.stderr and "Traceback" not in usage.stderr
    assert cardswitch("no-such-command").returncode == 2
    no_advice = cardswitch("terminal", "echo", "--advice")
    assert no_advice.returncode == 2 and "--advice: echo has no advice" in no_advice.stderr


def _wait_for_line(process: subprocess.Popen, path: Path, needle: str, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if any(needle == event["event"] for event in events):
                return events
        assert process.poll() is None, "the process exited"
        time.sleep(0.05)
    raise AssertionError(f"no {needle} event within {timeout} s")


def test_serve_runs_real_processes_and_reloads_routes_on_sighup_and_admin_command(tmp_path, processes):
    admin_port = free_port()
    network = one_issuer_network(tmp_path, [card(balance=100000)], prefix="5",
                                 switch={"admin_port": admin_port, "data_dir": "data"})
    config, log = network.config, network.log
    _, switch = processes.issuer_and_switch(network)
    purchase = ("terminal", "purchase", "--port", str(network.switch_port), "--pan", "4761730000000011",
                "--expiry", "3012", "--amount", "5.00", "--json")
    assert json.loads(cardswitch(*purchase).stdout)["39"] == "15"

    config.write_text(config.read_text().replace('prefix = "5"', 'prefix = "4"'))
    switch.send_signal(signal.SIGHUP)
    _wait_for_line(switch, log, "routes_reloaded")
    assert json.loads(cardswitch(*purchase).stdout)["39"] == "00"
    advice = json.loads(cardswitch(*purchase, "--advice").stdout)
    assert (advice["mti"], advice["39"]) == ("0230", "00")

    config.write_text(config.read_text().replace('prefix = "4"', 'prefix = "4x"'))
    switch.send_signal(signal.SIGHUP)
    events = _wait_for_line(switch, log, "routes_reload_rejected")
    rejected = next(e for e in events if e["event"] == "routes_reload_rejected")
    assert "routes[0].prefix" in rejected["reason"]
    assert json.loads(cardswitch(*purchase).stdout)["39"] == "00"  # the old table stays

    refused = cardswitch("admin", "reload-routes", "--admin", f"127.0.0.1:{admin_port}")
    assert refused.returncode == 1 and "routes[0].prefix" in refused.stdout
    config.write_text(config.read_text().replace('prefix = "4x"', 'prefix = "6"'))
    reloaded = cardswitch("admin", "reload-routes", "--admin", f"127.0.0.1:{admin_port}")
    assert reloaded.returncode == 0 and json.loads(reloaded.stdout) == {"ok": True, "detail": "1 entries"}
    assert json.loads(cardswitch(*purchase).stdout)["39"] == "15"
    status = json.loads(cardswitch("admin", "status", "--admin", f"127.0.0.1:{admin_port}").stdout)
    assert status["links"] == {"bank": {"up": True, "in_flight": 0, "unmatched": 0, "saturated": 0}}
    assert (status["routes"], status["shed"], status["overloaded"]) == (1, 0, False)
    processes.stop_all()
    assert os.path.getsize(log) > 0  # after stopping


@pytest.mark.parametrize("command, option", [
    (("bench", "--quick"), "--json"),
    (("load", "--target", "127.0.0.1:9", "--count", "1"), "--json"),
    (("load", "--target", "127.0.0.1:9", "--count", "1"), "--plot"),
    (("replay", "capture.jsonl", "--target", "127.0.0.1:9"), "--junit"),
])
def test_an_unwritable_output_file_is_refused_before_the_run(tmp_path, command, option):
    """It used to be found out after the whole run (minutes for bench), with a traceback."""
    started = time.monotonic()
    out = tmp_path / "no such directory" / "out"
    result = cardswitch(*command, option, str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{option} {out}: cannot write" in result.stderr
    assert time.monotonic() - started < 20
    directory = cardswitch(*command, option, str(tmp_path))
    assert directory.returncode == 2 and "is a directory" in directory.stderr


def test_issuer_on_a_port_in_use_or_out_of_range_is_one_line_exit_2():
    import socket
    issuer_file = str(ROOT / "specs" / "demo" / "issuers" / "bank_a.toml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = cardswitch("issuer", "--config", issuer_file, "--port", str(port))
    assert busy.returncode == 2 and "Traceback" not in busy.stderr
    assert busy.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in busy.stderr
    for port_text in ("70000", "-1"):  # 70000 used to listen on 70000 - 65536 = 4464
        refused = cardswitch("issuer", "--config", issuer_file, "--port", port_text, timeout=10)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1
        assert "--port" in refused.stderr and "1 to 65535" in refused.stderr
