"""`cardswitch risk check`: every kind of finding, with its line, exit codes, JSON, --config;
and dead rules are really dead: the engine declines the same requests without them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.cli import main
from switch.core.risk.engine import RiskEngine
from switch.core.risk.facts import Facts
from switch.core.risk.rules import RuleSet
from switch.risk import read_rules_file
from switch.routing import RouteEntry, RoutingTable
from tools.risk.check import check

ROOT = Path(__file__).parent.parent
DEMO_CONFIG = ROOT / "specs" / "demo" / "switch.toml"

FLAWED = """\
[[rules]]
name = "sanctioned"
kind = "country"
deny = ["408", "364"]

[[rules]]
name = "home-only"
kind = "country"
bins = ["476173"]
allow = ["840", "408", "826"]
deny = ["826", "250"]

[[rules]]
name = "card-3"
kind = "velocity"
per = "card"
window_s = 3600
max_count = 3

[[rules]]
name = "card-5-flag"
kind = "velocity"
per = "card"
bins = ["4761"]
window_s = 3600
max_count = 5
action = "flag"

[[rules]]
name = "card-3-flag"
kind = "velocity"
per = "card"
window_s = 3600
max_count = 3
action = "flag"

[[rules]]
name = "travel-online"
kind = "travel"
channel = "not_present"
min_interval_s = 3600

[[rules]]
name = "negative"
kind = "amount"
max_amount = -1

[[rules]]
name = "bank-a-big"
kind = "amount"
issuers = ["nobody", "bank_a"]
bins = ["999999"]
max_amount = 100000

[[rules]]
name = "bank-a-big-again"
kind = "amount"
bins = ["999999"]
issuers = ["bank_a", "nobody"]
max_amount = 100000

[[rules]]
name = "us-scope"
kind = "country"
countries = ["840"]
deny = ["408"]
"""


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["risk", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "risk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_finding_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, FLAWED)
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    lines = out.splitlines()
    assert lines == [
        f"{path}:6: error: rules[1].allow: 826 both allowed and denied (the deny wins)",
        f"{path}:6: error: rules[1].allow: allows 408, which rules[0] 'sanctioned' (line 1) denies everywhere in "
        "this scope (rules make no exceptions to each other)",
        f"{path}:6: warning: rules[1].deny: denies 250, which the allow list leaves out already: no change",
        f"{path}:20: warning: rules[3]: dead: every request it flags, rules[2] 'card-3' (line 13) declines too "
        "(per card within 3600 s, limits as strict, its scope covering this one's)",
        f"{path}:29: error: rules[4]: conflict: the same condition as rules[2] 'card-3' (line 13), but it flags "
        "where that one declines with 65; only file order decides",
        f"{path}:37: warning: rules[5].channel: dead: travel is judged on card-present requests only, and the "
        "scope is card not present",
        f"{path}:43: error: rules[6].max_amount: an amount in minor units, 0 or more",
        f"{path}:55: warning: rules[8]: duplicate: the same condition and outcome as rules[7] 'bank-a-big' (line 48)",
        f"{path}:62: warning: rules[9].countries: dead: it never fires for the countries its scope names (840)",
        f"{path}: 9 rules, 4 errors, 5 warnings",
    ]


def test_config_adds_issuers_and_unrouted_bins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, FLAWED)
    code, out, _ = run(capsys, "check", path, "--config", DEMO_CONFIG)
    assert code == 1
    assert f"{path}:48: error: rules[7].issuers: issuer 'nobody' is not defined in the switch config" in out
    assert f"{path}:48: warning: rules[7].bins: BIN 999999: no route reaches it, so the rule never sees these cards" in out
    assert "issuer 'bank_a'" not in out
    assert "BIN 476173" not in out and "BIN 4761:" not in out  # routed in the demo


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, FLAWED)
    code, out, _ = run(capsys, "check", path, "--json")
    report = json.loads(out)
    assert code == 1
    assert (report["file"], report["rules"], report["errors"], report["warnings"]) == (str(path), 9, 4, 5)
    assert {"severity": "error", "line": 43, "key": "rules[6].max_amount",
            "message": "an amount in minor units, 0 or more"} in report["findings"]


def test_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[[rules]]\nname = "s"\nkind = "country"\ndeny = ["408"]\n\n'
                           '[[rules]]\nname = "v"\nkind = "velocity"\nper = "card"\nwindow_s = 60\nmax_count = 3\n')
    code, out, _ = run(capsys, "check", path, "--config", DEMO_CONFIG)
    assert (code, out) == (0, f"{path}: 2 rules, 0 errors, 0 warnings\n")


def test_warnings_alone_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", write(tmp_path, "# nothing yet\n"))
    assert code == 0 and "warning: no [[rules]]" in out and "0 rules, 0 errors, 1 warnings" in out
    path = write(tmp_path, '[[rules]]\nname = "nowhere"\nkind = "country"\nallow = ["840"]\ndeny = ["840"]\n')
    code, out, _ = run(capsys, "check", path)
    assert code == 1  # both allowed and denied
    assert f"{path}:1: warning: rules[0].allow: allows no country: it declines every request in its scope" in out


def test_unreadable_files_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", tmp_path / "missing.toml")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "missing.toml" in err
    path = write(tmp_path, '[[rules]]\nname = "x"\nkind = "country"\ndeny = ["408"]\n')
    code, out, err = run(capsys, "check", path, "--config", tmp_path / "nope.toml")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "nope.toml" in err
    code, _, err = run(capsys, "check", write(tmp_path, "[[rules]\n", "broken.toml"))
    assert code == 2 and "broken.toml:1: (file): valid TOML" in err


def test_the_command_is_registered() -> None:
    result = subprocess.run([sys.executable, "-m", "switch.cli", "risk", "check", "--help"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and "--config SWITCH_TOML" in result.stdout


def test_mutually_dead_rules_report_only_the_later(tmp_path: Path) -> None:
    # The same firing countries written two ways: each makes the other dead.
    path = write(tmp_path, '[[rules]]\nname = "a"\nkind = "country"\nallow = ["840"]\n\n'
                           '[[rules]]\nname = "b"\nkind = "country"\nallow = ["840", "408"]\ndeny = ["408"]\n')
    findings = [f for f in check(read_rules_file(path)) if "dead" in f.message]
    assert [(f.line, f.key) for f in findings] == [(6, "rules[1]")]


def test_a_dead_rule_first_in_the_file_says_it_only_names_itself(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nname = "narrow"\nkind = "amount"\nbins = ["4761"]\nmax_amount = 5000\n\n'
                           '[[rules]]\nname = "wide"\nkind = "amount"\nmax_amount = 1000\n')
    [finding] = check(read_rules_file(path))
    assert finding.line == 1 and "rules[1] 'wide' (line 7) declines too" in finding.message
    assert "it comes first, so it only puts its own name and code on those declines" in finding.message


def test_routing_table_reaches() -> None:
    table = RoutingTable([RouteEntry("a", "476173", "476173"), RouteEntry("b", "51", "55")])
    assert table.reaches("4761", "4761") and table.reaches("476173", "476173")
    assert table.reaches("4761730001", "4761730001") and table.reaches("400000", "500000")
    assert table.reaches("5500", "5999") and table.reaches("3", "9")
    assert not table.reaches("4761740", "4999999") and not table.reaches("56", "59")
    assert not RoutingTable([]).reaches("0", "9")


# -- dead means dead: with or without the rule, the engine declines the same requests ----------

_BINS = ["4761", "476173", "5"]
_COUNTRIES = ["840", "408", "826"]


def _scope(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        return ""
    if draw(st.booleans()):
        lines.append(f'bins = ["{draw(st.sampled_from(_BINS))}"]')
    if draw(st.booleans()):
        lines.append(f'countries = {json.dumps(draw(st.lists(st.sampled_from(_COUNTRIES), min_size=1, unique=True)))}')
    if draw(st.booleans()):
        lines.append(f'channel = "{draw(st.sampled_from(["present", "not_present"]))}"')
    return "\n".join(lines)


@st.composite
def _rule(draw: st.DrawFn, name: str, kind: str) -> str:
    action = draw(st.sampled_from(["decline", "flag"]))
    head = f'[[rules]]\nname = "{name}"\nkind = "{kind}"\naction = "{action}"\n{_scope(draw)}\n'
    if kind == "velocity":
        limits = draw(st.sampled_from([("max_count", 2), ("max_count", 3), ("max_amount", 3000)]))
        body = f'per = "card"\nwindow_s = {draw(st.sampled_from([10, 20]))}\n{limits[0]} = {limits[1]}\n'
    elif kind == "amount":
        body = f'max_amount = {draw(st.sampled_from([500, 1500]))}\nrequire_pin = {draw(st.sampled_from(["true", "false"]))}\n'
    elif kind == "country":
        lists = draw(st.sampled_from([("deny",), ("allow",), ("allow", "deny")]))
        body = "".join(f"{key} = {json.dumps(draw(st.lists(st.sampled_from(_COUNTRIES), min_size=1, unique=True)))}\n"
                       for key in lists)
    else:
        body = f"min_interval_s = {draw(st.sampled_from([5, 15]))}\n"
    return head + body


_REQUESTS = st.lists(st.tuples(st.sampled_from(["4761731111111111", "4761749999999999", "5111111111111111"]),
                               st.sampled_from(_COUNTRIES + [None]), st.sampled_from([100, 1000, 2000]),
                               st.booleans(), st.sampled_from(["present", "not_present"]),
                               st.sampled_from(["00", "05"])),
                     min_size=1, max_size=25)


def _declined(rules: RuleSet, requests: list[tuple]) -> list[tuple[bool, list[str]]]:
    """Per request: declined or not, and the flags of requests that go on."""
    engine = RiskEngine(rules)
    seen = []
    for now, (pan, country, amount, pin, channel, answer) in enumerate(requests):
        facts = Facts(pan=pan, pan_hash=pan, issuer=None, terminal="T1", acquirer=None, merchant=None, mcc=None,
                      country=country, channel=channel, amount=amount, has_pin=pin)
        found = engine.assess(facts, float(now))
        code = found.decline.code if found.decline else answer
        engine.settle(found, code, float(now))
        seen.append((found.decline is not None, [] if found.decline else [hit.rule for hit in found.flags]))
    return seen


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_dead_rules_change_no_decision(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["velocity", "amount", "country", "travel"]))  # dead only by its own kind
    text = data.draw(_rule("a", kind)) + "\n" + data.draw(_rule("b", kind))
    path = tmp_path_factory.mktemp("dead") / "rules.toml"
    path.write_text(text)
    read = read_rules_file(path)
    dead = {f.key for f in check(read) if f.message.startswith("dead: every request")}
    requests = data.draw(_REQUESTS)
    for rule in read.rules.rules:
        if read.keys[rule.name] not in dead:
            continue
        without = RuleSet(tuple(r for r in read.rules.rules if r is not rule))
        with_it, without_it = _declined(read.rules, requests), _declined(without, requests)
        assert [d for d, _ in with_it] == [d for d, _ in without_it], text
        assert all(rule.name not in flags for _, flags in with_it), text
