"""`cardswitch bench` and `serve --workers` as real processes: they run, report every key, lose
nothing; figures themselves are never asserted (speed is measured, not tested)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import read_events, write_config
from processes import card, one_issuer_network, stop_gracefully
from tools.cli.bench import options_from, register
from tools.load.processes import toml_text, wait_for_events

ROOT = Path(__file__).resolve().parents[1]
BENCH_KEYS = {"tps_max", "latency_ms", "switch_cpu_us_per_txn", "codec_us_per_txn", "ratio", "mac_us_per_txn",
              "lost", "tls"}


def cardswitch(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_toml_text_round_trips():
    data = {"switch": {"data_dir": "/tmp/x", "saf": {"retry_limit": 3}},
            "issuers": [{"name": "a", "port": 1, "verify": {"cvv2": True}}, {"name": "b", "match_key": ["mti", "11"]}]}
    assert tomllib.loads(toml_text(data)) == data


def test_bench_smoke_reports_every_key_with_two_workers(tmp_path):
    out = tmp_path / "bench.json"
    done = cardswitch("bench", "--duration", "1", "--loads", "50", "--workers", "1,2",
                      "--connections", "2", "--in-flight", "2", "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert set(figures) == BENCH_KEYS | {"scaling"}
    phase = figures["latency_ms"]["50"]
    assert set(phase) == {"p50", "p99", "switch_p50", "switch_p99", "added_p50", "added_p99", "achieved_tps"}
    assert 0 < phase["added_p50"] <= phase["switch_p50"] <= phase["p99"]
    assert [row["workers"] for row in figures["scaling"]] == [1, 2]
    assert figures["lost"] == 0 and figures["tps_max"] > 0 and figures["codec_us_per_txn"] > 0
    assert figures["mac_us_per_txn"] > 0
    assert "switch_cpu_us_per_txn" in done.stdout


def test_bench_tls_runs_the_terminals_over_tls(tmp_path):
    out = tmp_path / "bench.json"
    done = cardswitch("bench", "--tls", "--duration", "1", "--loads", "50", "--connections", "2",
                      "--in-flight", "2", "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["tls"] is True and figures["lost"] == 0 and figures["tps_max"] > 0
    assert "terminals over" in done.stdout and "TLS" in done.stdout


def test_serve_workers_share_the_port_each_with_its_own_journal(tmp_path, processes):
    network = one_issuer_network(tmp_path, [card()])
    _, switch = processes.issuer_and_switch(network, "--workers", "2", links=2)
    wait_for_events(network.log, "listener_up", 2, switch)
    load = cardswitch("load", "--target", f"127.0.0.1:{network.switch_port}", "--count", "40", "--connections", "8",
                      "--mix", "purchase=1", "--issuer-file", str(network.issuer_file), "--quiet", "--json",
                      str(tmp_path / "load.json"))
    assert load.returncode == 0, load.stdout + load.stderr
    assert json.loads((tmp_path / "load.json").read_text())["response_codes"] == {"00": 40}
    assert sorted(p.name for p in network.data_dir.iterdir()) == ["worker-0", "worker-1"]
    assert stop_gracefully(switch, timeout=30) == 0  # the supervisor returns once both workers have exited
    assert sum(e["event"] == "shutdown_complete" for e in read_events(network.log)) == 2


def test_workers_need_fixed_ports(tmp_path):
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": 9}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    done = cardswitch("serve", "--config", str(config), "--workers", "2", timeout=30)
    assert done.returncode == 2 and "fixed ports" in done.stderr and "Traceback" not in done.stderr


def test_quick_help_promises_what_the_phases_add_up_to():
    """`--quick` said "about a minute"; it runs in about 25 s (measured: 24 s on a loaded 2-core
    VM): a 3 s warm-up, a closed loop and one open loop per --loads rate, 5 s each, plus
    start-up and the codec pass."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    options = options_from(parser.parse_args(["bench", "--quick"]))
    phases = options.warmup_seconds + options.phase_seconds * (1 + len(options.loads))
    helped = " ".join(cardswitch("bench", "--help", timeout=60).stdout.split())
    promised = int(re.search(r"--quick 5 s phases: about (\d+) s in all", helped)[1])
    assert phases <= promised <= phases + 10
