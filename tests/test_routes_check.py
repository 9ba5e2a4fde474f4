"""`routes check` rules that depend on conditions and PAN length, called directly."""

from __future__ import annotations

import json
from pathlib import Path

from switch.routes.check import check
from switch.routes.source import read_routes_file
from switch.routing import RoutingTable


def table(array: str, **keys) -> str:
    """One `[[array]]` table as TOML text, a line per key (so findings can name line numbers)."""
    return f"[[{array}]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())


def route(**keys) -> str:
    return table("routes", **keys)


ISSUERS = table("issuers", name="a") + table("issuers", name="b")  # lines 1-4; routes start at line 5


def findings(tmp_path: Path, *tables: str) -> list[str]:
    """`routes check` findings for issuers a and b followed by `tables`."""
    path = tmp_path / "routes.toml"
    path.write_text(ISSUERS + "".join(tables))
    table_file = read_routes_file(path)
    return [f"{f.severity} {f.key}: {f.message}" for f in check(table_file, RoutingTable(table_file.entries))]


def test_disjoint_conditions_on_one_prefix_are_not_a_conflict(tmp_path: Path):
    assert findings(tmp_path, route(prefix="4", issuer="a", currencies=["840"]),
                    route(prefix="4", issuer="b", currencies=["978"])) == []


def test_overlapping_conditions_on_one_prefix_conflict(tmp_path: Path):
    result = findings(tmp_path, route(prefix="4", issuer="a", currencies=["840", "978"]),
                      route(prefix="4", issuer="b", currencies=["978"]))
    assert result[0].startswith("error routes[1]: conflict: 4 -> b overlaps routes[0] (line 5) 4 -> a")
    assert result[1].startswith("warning routes[1]: dead:")  # file order makes routes[0] win


def test_conditional_entry_does_not_kill_the_unconditional_one_under_it(tmp_path: Path):
    assert findings(tmp_path, route(prefix="4", issuer="a"),
                    route(prefix="4", issuer="b", processing_codes=["01"])) == []


def test_conditional_entry_under_a_wider_unconditional_one_is_dead(tmp_path: Path):
    [finding] = findings(tmp_path, route(prefix="4", issuer="a", priority=1),
                         route(low="40", high="49", issuer="b"))
    assert finding == "warning routes[1]: dead: 40-49 -> b is never chosen (e.g. by routes[0] (line 5) 4 -> a)"


def test_longer_entry_does_not_kill_a_shorter_one_for_short_numbers(tmp_path: Path):
    # 400-499 wins (priority) for every number of 3 or more digits, but the 2-digit range still
    # serves 2-digit numbers, so it is not dead.
    assert findings(tmp_path, route(low="400", high="499", issuer="a", priority=1),
                    route(low="40", high="49", issuer="b")) == []


def test_fallback_to_itself_and_undefined_fallback(tmp_path: Path):
    result = findings(tmp_path, route(prefix="4", issuer="a", fallback="a"),
                      route(prefix="5", issuer="a", fallback="zz"))
    assert "warning routes[0].fallback: the same issuer as `issuer`: no fallback at all" in result
    assert "error routes[1].fallback: issuer 'zz' is not defined in [[issuers]]" in result
    assert "warning issuers: issuer 'b': nothing routes to it" in result


def test_repeated_issuer_name(tmp_path: Path):
    result = findings(tmp_path, table("issuers", name="a"), route(prefix="4", issuer="a"),
                      route(prefix="5", issuer="b"))
    assert "error issuers[2].name: a name not already used ('a' repeats line 1)" in result
