"""`cardswitch risk test`: the demo cases pass against the demo rules, failures name the case,
the request, what was expected and what decided, JUnit XML for CI, one-line errors with lines."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from switch.cli import main

DEMO_CASES = Path(__file__).parent.parent / "specs" / "demo" / "risk-cases.toml"
DEMO_RULES = DEMO_CASES.with_name("risk.toml")
PAN = "4761730000000060"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["risk", "test", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def rules() -> Path:
    return DEMO_RULES


def cases(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.toml"
    path.write_text(text)
    return path


def test_demo_cases_pass_and_write_junit(rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    code, out, _ = run(capsys, rules, DEMO_CASES, "--junit", junit)
    assert code == 0, out
    assert out.splitlines()[-1] == "3 cases: 3 passed, 0 failed"
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "0")


WRONG = f"""\
[[cases]]
name = "velocity off by one"

[[cases.requests]]
pan = "{PAN}"
amount = 100
expect = "00"

[[cases.requests]]
pan = "{PAN}"
amount = 100
expect = "65"
rule = "velocity-demo-card"

[[cases.requests]]
pan = "{PAN}"
amount = 100
expect = "65"
rule = "velocity-demo-card"

[[cases]]
name = "right"

[[cases.requests]]
bin = "476173"
amount = 100
country = "408"
expect = "59"
rule = "sanctioned-country"

[[cases]]
name = "wrong rule and flags"

[[cases.requests]]
bin = "476173"
amount = 100
country = "408"
expect = "59"
rule = "card-testing"
flagged = ["velocity-demo-card"]
"""


def test_failures_name_case_request_expectation_and_rule(rules: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    code, out, _ = run(capsys, rules, cases(tmp_path, WRONG), "--junit", junit)
    assert code == 1
    assert out.splitlines() == [
        "FAIL  velocity off by one (3 requests)",
        "      requests[1] (line 9): 476173******0060 at 1 s: expected 65 by velocity-demo-card; got 00 from the issuer",
        "PASS  right (1 request)",
        "FAIL  wrong rule and flags (1 request)",
        "      requests[0] (line 34): 476173 at 0 s: expected 59 by card-testing, flagged by velocity-demo-card; "
        "got 59 by sanctioned-country, flagged by none",
        "3 cases: 1 passed, 2 failed",
    ]
    xml_text = junit.read_text()
    assert PAN not in xml_text
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    failure = suite.find("testcase[@name='velocity off by one']/failure")
    assert failure is not None and failure.get("message", "").startswith("requests[1] (line 9): 476173******0060")


def test_rate_limits_and_flags_run_as_in_the_switch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rate.toml"
    rules.write_text('[[rules]]\nname = "burst"\nkind = "rate"\nper = "connection"\nper_second = 1\nburst = 2\n\n'
                     '[[rules]]\nname = "big"\nkind = "amount"\naction = "flag"\nmax_amount = 1000\n')
    requests = "".join(f'[[cases.requests]]\nbin = "4"\namount = {amount}\nat = {at}\nconnection = "{conn}"\n'
                       f'expect = "{expect}"\n{extra}\n'
                       for amount, at, conn, expect, extra in [
                           (100, 0, "c1", "00", "flagged = []"), (5000, 0, "c1", "00", 'rule = "big"'),
                           (100, 0, "c1", "91", 'rule = "burst"'), (100, 0, "c2", "00", ""),
                           (100, 1, "c1", "00", "")])
    code, out, _ = run(capsys, rules, cases(tmp_path, f'[[cases]]\nname = "burst of 2"\n\n{requests}'))
    assert code == 0, out


@pytest.mark.parametrize("request_text, error", [
    ('amount = 1\nexpect = "00"\n', "cases.toml:4: cases[0].requests[0].pan: exactly one of pan and bin"),
    ('pan = "4761"\nbin = "4761"\namount = 1\nexpect = "00"\n', "cases[0].requests[0].pan: exactly one of pan and bin"),
    ('pan = "4761-73"\namount = 1\nexpect = "00"\n', "cases[0].requests[0].pan: a string of 1 to 19 digits"),
    ('pan = "4761"\nexpect = "00"\n', "cases[0].requests[0].amount: a value (an amount in minor units, 0 or more)"),
    ('pan = "4761"\namount = 1\n', "cases[0].requests[0].expect: a value"),
    ('pan = "4761"\namount = 1\nexpect = "00"\ncountry = 840\n', "cases[0].requests[0].country: a 3-digit"),
    ('pan = "4761"\namount = 1\nexpect = "00"\nchannel = "online"\n', "requests[0].channel: one of present, not_present"),
    ('pan = "4761"\namount = 1\nexpect = "00"\ncolour = "red"\n', "requests[0].colour: not a known key"),
    ('pan = "4761"\namount = 1\nexpect = "approved"\n', "requests[0].expect: the response code"),
    ('pan = "4761"\namount = 1\nexpect = "00"\nflagged = "x"\n', "requests[0].flagged: a list of rule names"),
])
def test_cases_file_errors_are_one_line_with_file_line_and_key(
        rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], request_text: str, error: str) -> None:
    path = cases(tmp_path, f'[[cases]]\nname = "x"\n\n[[cases.requests]]\n{request_text}')
    code, out, err = run(capsys, rules, path)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and error in err, err
    assert "4761" not in err.replace(str(tmp_path), "")  # values are not echoed


def test_time_must_not_go_back(rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cases(tmp_path, '[[cases]]\n[[cases.requests]]\nbin = "4"\namount = 1\nexpect = "00"\nat = 10\n\n'
                           '[[cases.requests]]\nbin = "4"\namount = 1\nexpect = "00"\nat = 9\n')
    code, _, err = run(capsys, rules, path)
    assert code == 2
    assert "cases.toml:8: cases[0].requests[1].at: seconds from the case start, 10 or more" in err


def test_a_case_needs_requests_and_a_file_needs_cases(rules: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, rules, cases(tmp_path, '[[cases]]\nname = "empty"\n'))
    assert code == 2 and "cases.toml:1: cases[0].requests: at least one request" in err
    code, _, err = run(capsys, rules, cases(tmp_path, "# nothing\n"))
    assert code == 2 and "cases: at least one case" in err


def test_bad_rules_and_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "v"\nkind = "velocity"\nper = "card"\nwindow_s = 60\n')
    code, _, err = run(capsys, bad, DEMO_CASES)
    assert code == 2 and err.count("\n") == 1 and "bad.toml:1: rules[0].max_count" in err
    code, _, err = run(capsys, tmp_path / "none.toml", DEMO_CASES)
    assert code == 2 and "none.toml" in err


def test_unwritable_junit_is_refused_before_running(rules: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, rules, DEMO_CASES, "--junit", tmp_path / "missing" / "junit.xml")
    assert (code, out) == (2, "") and "--junit" in err and "cannot write" in err
