"""`cardswitch bench` and `serve --workers` as real processes: they run, report every key, lose
nothing; figures themselves are never asserted (speed is measured, not tested)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from switch.load.processes import free_port, toml_text, wait_for_events
from conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
BENCH_KEYS = {"tps_max", "latency_ms", "switch_cpu_us_per_txn", "codec_us_per_txn", "ratio", "lost"}


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
    assert set(figures["latency_ms"]["50"]) == {"p50", "p99", "achieved_tps"}
    assert [row["workers"] for row in figures["scaling"]] == [1, 2]
    assert figures["lost"] == 0 and figures["tps_max"] > 0 and figures["codec_us_per_txn"] > 0
    assert "switch_cpu_us_per_txn" in done.stdout


def test_serve_workers_share_the_port_each_with_its_own_journal(tmp_path):
    issuer_port, switch_port = free_port(), free_port()
    issuer_file = tmp_path / "issuer.toml"
    issuer_file.write_text(f"[issuer]\nname = 'bank'\nport = {issuer_port}\n\n"
                           "[[cards]]\npan = '4761730000000011'\nexpiry = '3012'\nbalance = 100000000\n")
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": switch_port}])
    config.write_text(f"[switch]\ndata_dir = {json.dumps(str(tmp_path / 'data'))}\n\n" + config.read_text())
    log = tmp_path / "switch.log"
    issuer = subprocess.Popen([sys.executable, "-m", "switch.cli", "issuer", "--config", str(issuer_file)],
                              cwd=ROOT, stderr=subprocess.DEVNULL)
    switch = subprocess.Popen([sys.executable, "-m", "switch.cli", "serve", "--config", str(config),
                               "--log-file", str(log), "--workers", "2"], cwd=ROOT)
    try:
        wait_for_events(log, "listener_up", 2, switch)
        wait_for_events(log, "link_up", 2, switch)
        load = cardswitch("load", "--target", f"127.0.0.1:{switch_port}", "--count", "40", "--connections", "8",
                          "--mix", "purchase=1", "--issuer-file", str(issuer_file), "--quiet", "--json",
                          str(tmp_path / "load.json"))
        assert load.returncode == 0, load.stdout + load.stderr
        assert json.loads((tmp_path / "load.json").read_text())["response_codes"] == {"00": 40}
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["worker-0", "worker-1"]
    finally:
        switch.send_signal(signal.SIGTERM)
        issuer.send_signal(signal.SIGINT)
        assert switch.wait(timeout=30) == 0
        issuer.wait(timeout=10)
    time.sleep(0.2)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert sum(e["event"] == "shutdown_complete" for e in events) == 2


def test_workers_need_fixed_ports(tmp_path):
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": 9}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    done = cardswitch("serve", "--config", str(config), "--workers", "2", timeout=30)
    assert done.returncode == 2 and "fixed ports" in done.stderr and "Traceback" not in done.stderr
