"""`cardswitch risk bench`: it runs, reports per-transaction cost and memory, and its 20-rule
fixture is a clean rules file for the demo network (speed itself is never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switch.cli import main
from switch.config import load_config
from switch.risk import read_rules_file
from tools.risk.bench import traffic
from tools.risk.check import check

ROOT = Path(__file__).parent.parent
RULES_20 = ROOT / "specs" / "bench" / "risk-20.toml"


def test_bench_reports_cost_memory_and_declines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "bench", str(RULES_20), "--requests", "3000", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rules"], report["requests"], report["seed"]) == (20, 3000, 1)
    assert report["cpu_us"] > 0 and report["wall_us"] > 0 and report["held"] > 0
    assert report["declined"] and all(count > 0 for count in report["declined"].values())


def test_bench_text_and_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "bench", str(RULES_20), "--requests", "500"]) == 0
    out = capsys.readouterr().out
    assert "20 rules, 500 requests" in out and "µs per transaction" in out and "held" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["risk", "bench", str(RULES_20), "--requests", "0"])
    assert exit_info.value.code == 2


def test_traffic_is_seeded() -> None:
    first, again, other = traffic(50, 7), traffic(50, 7), traffic(50, 8)
    assert [(f.pan, f.amount, f.terminal, a, t) for f, a, t in first] == \
        [(f.pan, f.amount, f.terminal, a, t) for f, a, t in again]
    assert [f.pan for f, _, _ in first] != [f.pan for f, _, _ in other]


def test_the_20_rule_fixture_is_clean_for_the_demo_network() -> None:
    config = load_config(ROOT / "specs" / "demo" / "switch.toml")
    read = read_rules_file(RULES_20)
    assert len(read.rules) == 20
    kinds = {type(rule).__name__ for rule in read.rules.rules}
    assert kinds == {"Velocity", "CardTesting", "Country", "Travel", "AmountLimit", "RateLimit"}
    assert check(read, [issuer.name for issuer in config.issuers], config.routing) == []
