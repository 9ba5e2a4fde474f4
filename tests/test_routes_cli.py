"""`cardswitch routes ...` end to end, as a subprocess: outputs, exit codes, masking."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tools.cli.routes import register

DEMO = Path(__file__).parent.parent / "specs" / "demo"
PAN = "4761739001010010"


def routes(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "routes", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)


BROKEN = """\
[[issuers]]
name = "a"

[[issuers]]
name = "b"

[[issuers]]
name = "idle"

[[routes]]
prefix = "4"
issuer = "a"

[[routes]]
low = "41"
high = "4x"
issuer = "a"

[[routes]]
low = "50"
high = "40"
issuer = "a"

[[routes]]
low = "50"
high = "599"
issuer = "a"

[[routes]]
low = "400000"
high = "400999"
issuer = "a"

[[routes]]
low = "400500"
high = "401499"
issuer = "b"

[[routes]]
prefix = "4005"
issuer = "a"

[[routes]]
prefix = "4005"
issuer = "b"
priority = 1

[[routes]]
prefix = "6"
issuer = "nobody"
"""


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    return path


def test_check_clean_demo_exits_0():
    result = routes("check", DEMO / "routes-demo.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors, 0 warnings" in result.stdout


def test_check_reports_every_problem_with_its_line(broken: Path):
    result = routes("check", broken)
    assert result.returncode == 1
    out = result.stdout
    assert f"{broken}:14: error: routes[1].high:" in out  # malformed digits
    assert f"{broken}:19: error: routes[2].high: a value not below low" in out
    assert f"{broken}:24: error: routes[3].high: as many digits as low" in out
    # equal width and priority, overlapping, different issuers: both entries named
    assert f"{broken}:34: error: routes[5]: conflict: 400500-401499 -> b overlaps routes[4] (line 29) 400000-400999 -> a" in out
    # shadowed everywhere by the priority-1 entry on the same prefix
    assert f"{broken}:39: warning: routes[6]: dead: 4005 -> a is never chosen (e.g. by routes[7] (line 43)" in out
    assert f"{broken}:48: error: routes[8].issuer: issuer 'nobody' is not defined" in out
    assert f"{broken}:7: warning: issuers: issuer 'idle': nothing routes to it" in out


def test_check_json(broken: Path):
    result = routes("check", broken, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["errors"] == 5 and report["warnings"] == 2
    assert {"severity": "error", "line": 48, "key": "routes[8].issuer",
            "message": "issuer 'nobody' is not defined in [[issuers]]"} in report["findings"]


def test_warnings_alone_exit_0(tmp_path: Path):
    path = tmp_path / "w.toml"
    path.write_text('[[issuers]]\nname = "a"\n[[issuers]]\nname = "b"\n[[routes]]\nprefix = "4"\nissuer = "a"\n')
    result = routes("check", path)
    assert result.returncode == 0 and "nothing routes to it" in result.stdout


def test_lookup_explains_and_masks():
    result = routes("lookup", DEMO / "routes-demo.toml", PAN, "4005001234567899", "371449",
                    "--processing-code", "011000", "--currency", "978")
    assert result.returncode == 0
    assert PAN not in result.stdout and "4005001234567899" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "476173******0010: bank-a (fallback visa-net)"
    assert "lost:   routes[0] (line 21) 4 -> visa-net (priority 0): less specific (wider range)" in lines[2]
    assert "400500******7899: bank-a" in lines
    assert "371449: no route (no entry covers it)" in lines


def test_lookup_without_transaction_explains_conditional_loser():
    result = routes("lookup", DEMO / "routes-demo.toml", "4005001234567899", "--json")
    [answer] = json.loads(result.stdout)
    assert answer["issuer"] == "bank-b" and answer["pan"] == "400500******7899"
    assert answer["lost"][0]["reason"].startswith("conditional (processing_codes=01 currencies=978)")


def test_lookup_rejects_non_digits_without_echoing_them():
    result = routes("lookup", DEMO / "routes-demo.toml", "4761-7390-0101-0010")
    assert result.returncode == 2
    assert result.stderr.strip() == "cardswitch: error: PAN argument 1: expected 1 to 19 digits"


def test_diff_reports_compact_ranges_and_issuers(tmp_path: Path):
    old = tmp_path / "old.toml"
    new = tmp_path / "new.toml"
    old.write_text('[[issuers]]\nname = "a"\n[[issuers]]\nname = "gone"\n'
                   '[[routes]]\nlow = "400000"\nhigh = "499999"\nissuer = "a"\n')
    new.write_text('[[issuers]]\nname = "a"\n[[issuers]]\nname = "b"\n'
                   '[[routes]]\nlow = "400000"\nhigh = "499999"\nissuer = "a"\n'
                   '[[routes]]\nlow = "4100"\nhigh = "4199"\nissuer = "b"\n'
                   '[[routes]]\nprefix = "5"\nissuer = "b"\n')
    result = routes("diff", old, new)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "410000-419999 (10000 BINs of 6 digits): a -> b",
        "500000-599999 (100000 BINs of 6 digits): no route -> b",
        "2 changed ranges",
        "issuers added: b",
        "issuers removed: gone",
    ]
    data = json.loads(routes("diff", old, new, "--json").stdout)
    assert data["changes"][0] == {"low": "410000", "high": "419999", "digits": 6, "count": 10000, "old": "a", "new": "b"}


def test_test_passes_on_demo_and_writes_junit(tmp_path: Path):
    junit = tmp_path / "junit.xml"
    result = routes("test", DEMO / "routes-demo.toml", DEMO / "cases-demo.toml", "--junit", junit)
    assert result.returncode == 0, result.stdout + result.stderr
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "7" and suite.get("failures") == "0"


def test_test_failures_exit_1_with_csv_cases(tmp_path: Path):
    cases = tmp_path / "cases.csv"
    cases.write_text(f"name,pan,bin,issuer\nright,{PAN},,bank-a\nwrong,,545454,bank-a\nunrouted,,371449,none\n")
    junit = tmp_path / "junit.xml"
    result = routes("test", DEMO / "routes-demo.toml", cases, "--junit", junit)
    assert result.returncode == 1
    assert "FAIL  wrong: 545454 -> bank-a; got routes[4] (line 45) 510000-559999 -> bank-b" in result.stdout
    assert "3 cases: 2 passed, 1 failed" in result.stdout
    xml_text = junit.read_text()
    assert PAN not in xml_text and 'failures="1"' in xml_text


def test_test_refuses_an_unwritable_junit_before_printing_results(tmp_path: Path):
    junit = tmp_path / "missing" / "junit.xml"
    result = routes("test", DEMO / "routes-demo.toml", DEMO / "cases-demo.toml", "--junit", junit)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and f"--junit {junit}: cannot write" in result.stderr


def test_import_round_trips_through_check(tmp_path: Path):
    result = routes("import", DEMO / "routes-demo.csv")
    assert result.returncode == 0, result.stderr
    imported = tmp_path / "imported.toml"
    imported.write_text(result.stdout)
    assert routes("check", imported).returncode == 0
    assert routes("diff", DEMO / "routes-demo.csv", imported).stdout.startswith("0 changed ranges")


def test_import_accepts_bom_and_spaced_headers(tmp_path: Path):
    path = tmp_path / "bins.csv"
    path.write_text("\ufeffBIN Low,BIN High,Issuer,Brand\n476173,476173,a,VISA\n", encoding="utf-8")
    result = routes("import", path, "--no-issuers")
    assert result.returncode == 0, result.stderr
    assert result.stdout == '[[routes]]\nprefix = "476173"\nissuer = "a"\n\n'


def test_import_reports_bad_rows_by_line(tmp_path: Path):
    path = tmp_path / "bins.csv"
    path.write_text("bin_low,bin_high,issuer\n476173,476173,a\n4761,47619,b\n")
    result = routes("import", path)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{path}:3: error: routes[1].high: as many digits as low (4)" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["check", "missing.toml"], "missing.toml: (file): an existing file"),
    (["test", "specs/demo/routes-demo.toml", "specs/demo/routes-demo.toml"], "cases: a non-empty array of tables"),
    (["import", "specs/demo/routes-demo.toml"], "expected a .csv file"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    result = routes(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_bad_toml_names_the_line(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[[routes]]\nprefix = "4"\nissuer = \n')
    result = routes("check", path)
    assert result.returncode == 2 and f"{path}:3: (file): valid TOML" in result.stderr


def test_bench_prints_figures():
    result = routes("bench", "--entries", "2000", "--lookups", "500", "--load", "csv")
    assert result.returncode == 0, result.stderr
    assert "build:" in result.stdout and "lookup:" in result.stdout and "load_routing_file (csv" in result.stdout


def test_the_documented_bench_defaults_are_the_commands_own():
    """docs/routing.md once gave 1,000,000 entries as the default, ten times what the bench does."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    bench = parser.parse_args(["routes", "bench"])
    synopsis = next(line for line in (DEMO.parent.parent / "docs" / "routing.md").read_text().splitlines()
                    if line.startswith("cardswitch routes bench"))
    documented = dict(re.findall(r"\[--(entries|lookups) (\d+)\]", synopsis))
    assert documented == {"entries": str(bench.entries), "lookups": str(bench.lookups)}
    assert "default 100000" in routes("bench", "--help").stdout
