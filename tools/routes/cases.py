"""`routes test`: table-driven expectations about a routing table.

A cases file is TOML (`[[cases]]`) or CSV (same names as columns): each case has `pan` or `bin`,
the expected `issuer` ("none" when the number must not route), and optionally a `name` and the
transaction (`mti`, `processing_code`, `currency`) for conditional routes. Results print as a
report, and as JUnit XML for CI (tools/junit.py). PANs only ever appear masked, in the report and in the XML.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from switch.errors import ConfigError
from switch.routes.lines import header_lines
from switch.routes.source import parse_toml, read_text
from switch.routing import PAN_SPACE_DIGITS, RouteContext, RouteEntry, RoutingTable
from tools.routes.explain import display_number

NO_ROUTE = "none"
_KEYS = {"name", "pan", "bin", "issuer", "mti", "processing_code", "currency"}


@attrs.frozen
class Case:
    label: str  # name, or cases[i] (line n)
    number: str  # the PAN or BIN to look up
    expected: str | None  # None: no route
    context: RouteContext | None


@attrs.frozen
class Result:
    case: Case
    got: RouteEntry | None

    @property
    def passed(self) -> bool:
        return (self.got.issuer if self.got else None) == self.case.expected

    def line(self) -> str:
        expected = self.case.expected or NO_ROUTE
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.case.label}: {display_number(self.case.number)} -> {expected}"
        if self.passed:
            return head
        return f"{head}; got {self.got.describe() if self.got else NO_ROUTE}"


def read_cases(path: str | Path) -> list[Case]:
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows: list[tuple[Any, int | None]] = []
        for row in reader:
            rows.append(({k.strip().lower(): v.strip() for k, v in row.items() if k and v and v.strip()}, reader.line_num))
    else:
        raw = parse_toml(path, text).get("cases", [])
        if not isinstance(raw, list) or not raw:
            raise ConfigError(path, "cases", "a non-empty array of tables ([[cases]])")
        lines: Sequence[int | None] = header_lines(text, "cases", len(raw)) or [None] * len(raw)
        rows = list(zip(raw, lines))
    if not rows:
        raise ConfigError(path, "cases", "at least one case")
    return [_case(path, index, raw, line) for index, (raw, line) in enumerate(rows)]


def _case(path: Path, index: int, raw: Any, line: int | None) -> Case:
    where = f"cases[{index}]"
    file = f"{path}:{line}" if line else path
    if not isinstance(raw, dict):
        raise ConfigError(file, where, "a table with pan or bin, and issuer")
    unknown = raw.keys() - _KEYS
    if unknown:
        raise ConfigError(file, f"{where}.{sorted(unknown)[0]}", f"one of {', '.join(sorted(_KEYS))}")
    if ("pan" in raw) == ("bin" in raw):
        raise ConfigError(file, where, "exactly one of pan and bin")
    key = "pan" if "pan" in raw else "bin"
    number = raw[key]
    if not isinstance(number, str) or not (number.isascii() and number.isdigit() and 1 <= len(number) <= PAN_SPACE_DIGITS):
        raise ConfigError(file, f"{where}.{key}", f"a string of 1 to {PAN_SPACE_DIGITS} digits")
    expected = raw.get("issuer")
    if not isinstance(expected, str) or not expected:
        raise ConfigError(file, f"{where}.issuer", f'the expected issuer, or "{NO_ROUTE}"')
    context_keys = {name: raw[name] for name in ("mti", "processing_code", "currency") if name in raw}
    for name, value in context_keys.items():
        if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
            raise ConfigError(file, f"{where}.{name}", "a string of digits")
    label = raw.get("name") or (f"{where} (line {line})" if line else where)
    return Case(str(label), number, None if expected == NO_ROUTE else expected,
                RouteContext(**context_keys) if context_keys else None)


def run_cases(table: RoutingTable, cases: list[Case]) -> list[Result]:
    return [Result(case, table.lookup(case.number, case.context)) for case in cases]
