"""`routes check` rules that depend on conditions and PAN length, called directly."""

from __future__ import annotations

from pathlib import Path

from switch.routes.check import check
from switch.routes.source import read_routes_file
from switch.routing import RoutingTable

ISSUERS = '[[issuers]]\nname = "a"\n[[issuers]]\nname = "b"\n'


def findings(tmp_path: Path, routes: str) -> list[str]:
    path = tmp_path / "routes.toml"
    path.write_text(ISSUERS + routes)
    table_file = read_routes_file(path)
    return [f"{f.severity} {f.key}: {f.message}" for f in check(table_file, RoutingTable(table_file.entries))]


def test_disjoint_conditions_on_one_prefix_are_not_a_conflict(tmp_path: Path):
    assert findings(tmp_path, '[[routes]]\nprefix = "4"\nissuer = "a"\ncurrencies = ["840"]\n'
                              '[[routes]]\nprefix = "4"\nissuer = "b"\ncurrencies = ["978"]\n') == []


def test_overlapping_conditions_on_one_prefix_conflict(tmp_path: Path):
    result = findings(tmp_path, '[[routes]]\nprefix = "4"\nissuer = "a"\ncurrencies = ["840", "978"]\n'
                                '[[routes]]\nprefix = "4"\nissuer = "b"\ncurrencies = ["978"]\n')
    assert result[0].startswith("error routes[1]: conflict: 4 -> b overlaps routes[0] (line 5) 4 -> a")
    assert result[1].startswith("warning routes[1]: dead:")  # file order makes routes[0] win


def test_conditional_entry_does_not_kill_the_unconditional_one_under_it(tmp_path: Path):
    assert findings(tmp_path, '[[routes]]\nprefix = "4"\nissuer = "a"\n'
                              '[[routes]]\nprefix = "4"\nissuer = "b"\nprocessing_codes = ["01"]\n') == []


def test_conditional_entry_under_a_wider_unconditional_one_is_dead(tmp_path: Path):
    [finding] = findings(tmp_path, '[[routes]]\nprefix = "4"\nissuer = "a"\npriority = 1\n'
                                   '[[routes]]\nlow = "40"\nhigh = "49"\nissuer = "b"\n')
    assert finding == "warning routes[1]: dead: 40-49 -> b is never chosen (e.g. by routes[0] (line 5) 4 -> a)"


def test_longer_entry_does_not_kill_a_shorter_one_for_short_numbers(tmp_path: Path):
    # 400-499 wins (priority) for every number of 3 or more digits, but the 2-digit range still
    # serves 2-digit numbers, so it is not dead.
    assert findings(tmp_path, '[[routes]]\nlow = "400"\nhigh = "499"\nissuer = "a"\npriority = 1\n'
                              '[[routes]]\nlow = "40"\nhigh = "49"\nissuer = "b"\n') == []


def test_fallback_to_itself_and_undefined_fallback(tmp_path: Path):
    result = findings(tmp_path, '[[routes]]\nprefix = "4"\nissuer = "a"\nfallback = "a"\n'
                                '[[routes]]\nprefix = "5"\nissuer = "a"\nfallback = "zz"\n')
    assert "warning routes[0].fallback: the same issuer as `issuer`: no fallback at all" in result
    assert "error routes[1].fallback: issuer 'zz' is not defined in [[issuers]]" in result
    assert "warning issuers: issuer 'b': nothing routes to it" in result


def test_repeated_issuer_name(tmp_path: Path):
    result = findings(tmp_path, '[[issuers]]\nname = "a"\n[[routes]]\nprefix = "4"\nissuer = "a"\n'
                                '[[routes]]\nprefix = "5"\nissuer = "b"\n')
    assert "error issuers[2].name: a name not already used ('a' repeats line 1)" in result
