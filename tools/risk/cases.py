"""`risk test`: expectations about a rules file, as sequences of requests on a simulated clock.

Rules remember (velocity counts approvals, card testing counts declined cards, travel notes
where a card was), so a case is a named sequence of requests, run in order against a fresh
engine: `[[cases]]` with `name` and `[[cases.requests]]`. Each request gives the card (`pan`,
or `bin`: requests with the same number are the same card), `amount` in minor units, and
optionally `terminal` (41), `merchant` (42), `country` (19), `mcc` (18), `acquirer` (32),
`issuer`, `channel` ("present", the default, or "not_present"), `pin` (bool), `connection` (an
id for rate limits per connection, default "c1"), `at` (seconds from the case start,
non-decreasing, default the previous request's + 1) and `issuer_answer` (what the issuer would
answer if the request reached it, default "00"). It expects `expect`: the response code the
switch answers. That is the declining rule's code, or `issuer_answer` when no rule declines.
It may also expect `rule`, the rule that declines it (or, for a request that goes on, flags
it), and `flagged`, every rule that flags it (exactly these).

Each request goes through the engine the way the switch sends it: `throttle()` (a decline ends
it), then `assess()` (a decline ends it, and is settled with its code so that card testing
counts it as the switch would), else the issuer's answer, settled. Results print as a report
and as JUnit XML for CI. PANs only ever appear masked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
import attrs

from switch.core.codes import RC
from switch.core.risk.engine import RiskEngine
from switch.core.risk.facts import Facts
from switch.core.risk.rules import CHANNELS, PRESENT, RuleSet
from switch.errors import ConfigError
from switch.routes.lines import header_lines
from switch.routes.source import parse_toml, read_text
from switch.routing import PAN_SPACE_DIGITS
from switch.tomlfile import Table
from tools.routes.explain import display_number

DEFAULT_CONNECTION = "c1"
_OPTIONAL_TEXT = {"terminal": "a terminal id (field 41)", "merchant": "a merchant id (field 42)",
                  "acquirer": "an acquiring institution id (field 32)", "issuer": "an issuer name"}
_DIGITS = {"country": (3, "a 3-digit ISO 3166 country code (field 19)"), "mcc": (4, "a 4-digit MCC (field 18)")}


@attrs.frozen
class Request:
    where: str  # "requests[2] (line 31)", for the report
    number: str  # the PAN or BIN
    facts: Facts  # read-only to the engine
    at: float
    issuer_answer: str
    expect: str
    rule: str | None
    flagged: frozenset[str] | None


@attrs.frozen
class Case:
    label: str  # name, or cases[i] (line n)
    requests: tuple[Request, ...]


@attrs.frozen
class Outcome:
    """What the switch would answer one request, and which rules spoke."""

    request: Request
    code: str
    decided: str | None  # the rule that declined it; None: the issuer answered
    flags: frozenset[str]

    def spoke(self, rule: str) -> bool:
        """`rule` declined the request, or flagged it and it went on."""
        return rule == self.decided if self.decided else rule in self.flags

    def mismatch(self) -> str | None:
        """What differs from the expectation, or None."""
        request = self.request
        right_rule = request.rule is None or self.spoke(request.rule)
        if self.code == request.expect and right_rule and request.flagged in (None, self.flags):
            return None
        expected = request.expect + (f" by {request.rule}" if request.rule else "")
        if request.flagged is not None:
            expected += f", flagged by {_names(request.flagged)}"
        got = self.code + (f" by {self.decided}" if self.decided else " from the issuer")
        if self.flags or request.flagged is not None:
            got += f", flagged by {_names(self.flags)}"
        return (f"{request.where}: {display_number(request.number)} at {request.at:g} s: "
                f"expected {expected}; got {got}")


def _names(rules: frozenset[str]) -> str:
    return ", ".join(sorted(rules)) or "none"


@attrs.frozen
class Result:
    case: Case
    outcomes: tuple[Outcome, ...]

    @property
    def failures(self) -> list[str]:
        return [problem for outcome in self.outcomes if (problem := outcome.mismatch()) is not None]

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        count = len(self.outcomes)
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.case.label} ({count} request{'s' * (count != 1)})"
        return [head, *(f"      {failure}" for failure in self.failures)]


# -- reading ------------------------------------------------------------------------------------

def read_cases(path: str | Path) -> list[Case]:
    """The cases of `path`; the first mistake raises ConfigError (file:line: key: expected)."""
    path = Path(path)
    text = read_text(path)
    top = Table(path, "", parse_toml(path, text))
    raw = top.tables("cases")
    top.finish()
    if not raw:
        raise top.error("cases", "at least one case ([[cases]])")
    requests = sum(len(case.data.get("requests", [])) if isinstance(case.data.get("requests"), list) else 0
                   for case in raw)
    case_lines = _lines(text, "cases", len(raw))
    request_lines = iter(_lines(text, "cases.requests", requests))
    return [_case(path, table, line, request_lines) for table, line in zip(raw, case_lines)]


def _lines(text: str, name: str, count: int) -> Sequence[int | None]:
    return header_lines(text, name, count) or [None] * count


def _at_line(path: Path, table: Table, line: int | None) -> Table:
    """`table`, its errors naming file:line."""
    return Table(f"{path}:{line}" if line else path, table.where, table.data)


def _case(path: Path, table: Table, line: int | None, request_lines: Iterator[int | None]) -> Case:
    table = _at_line(path, table, line)
    where = table.where + (f" (line {line})" if line else "")
    label = table.get("name", str, where, "a case name", lambda v: bool(v.strip()))
    raw = table.tables("requests")
    table.finish()
    if not raw:
        raise table.error("requests", "at least one request ([[cases.requests]])")
    requests: list[Request] = []
    for request in raw:
        previous = requests[-1].at if requests else None
        requests.append(_request(path, request, next(request_lines, None), previous))
    return Case(label, tuple(requests))


def _request(path: Path, table: Table, line: int | None, previous: float | None) -> Request:
    table = _at_line(path, table, line)
    if ("pan" in table.data) == ("bin" in table.data):
        raise table.error("pan", "exactly one of pan and bin")
    key = "pan" if "pan" in table.data else "bin"
    number = table.get(key, str, expected=f"a string of 1 to {PAN_SPACE_DIGITS} digits",
                       check=_digits(1, PAN_SPACE_DIGITS))
    optional = {name: table.get(name, str, None, expected) for name, expected in _OPTIONAL_TEXT.items()}
    for name, (width, expected) in _DIGITS.items():
        optional[name] = table.get(name, str, None, expected, _digits(width, width))
    facts = Facts(
        pan=number, pan_hash=hashlib.sha256(number.encode()).hexdigest(), issuer=optional["issuer"],
        terminal=optional["terminal"], acquirer=optional["acquirer"], merchant=optional["merchant"],
        mcc=optional["mcc"], country=optional["country"],
        channel=table.get("channel", str, PRESENT, f"one of {', '.join(CHANNELS)}", lambda v: v in CHANNELS),
        amount=table.get("amount", int, expected="an amount in minor units, 0 or more", check=lambda v: v >= 0),
        has_pin=table.get("pin", bool, False, "true or false"),
        connection=table.get("connection", str, DEFAULT_CONNECTION, "a connection id"),
    )
    start = 0.0 if previous is None else previous
    default_at = 0.0 if previous is None else previous + 1
    at = float(table.get("at", (int, float), default_at, f"seconds from the case start, {start:g} or more "
                         "(not before the previous request)", lambda v: v >= start))
    flagged = table.get("flagged", list, None, "a list of rule names", lambda v: all(isinstance(n, str) for n in v))
    request = Request(
        where=table.where.rsplit(".", 1)[-1] + (f" (line {line})" if line else ""),
        number=number, facts=facts, at=at,
        issuer_answer=table.get("issuer_answer", str, RC.APPROVED, "a 2-character response code", _is_code),
        expect=table.get("expect", str, expected="the response code the switch answers (2 characters)", check=_is_code),
        rule=table.get("rule", str, None, "a rule name"),
        flagged=frozenset(flagged) if flagged is not None else None,
    )
    table.finish()
    return request


def _digits(shortest: int, longest: int) -> Callable[[str], bool]:
    return lambda value: value.isascii() and value.isdigit() and shortest <= len(value) <= longest


def _is_code(value: str) -> bool:
    return len(value) == 2 and value.isascii() and value.isalnum()


# -- running ------------------------------------------------------------------------------------

def run_cases(rules: RuleSet, cases: list[Case]) -> list[Result]:
    """Each case against a fresh engine, its requests in order on its own clock."""
    results = []
    for case in cases:
        engine = RiskEngine(rules)
        results.append(Result(case, tuple(_send(engine, request) for request in case.requests)))
    return results


def _send(engine: RiskEngine, request: Request) -> Outcome:
    facts, now = request.facts, request.at
    decline, throttle_flags = engine.throttle(facts, now)
    flags = {hit.rule for hit in throttle_flags}
    if decline is not None:
        return Outcome(request, decline.code, decline.rule, frozenset(flags))
    found = engine.assess(facts, now)
    flags.update(hit.rule for hit in found.flags)
    code = found.decline.code if found.decline else request.issuer_answer
    engine.settle(found, code, now)
    return Outcome(request, code, found.decline.rule if found.decline else None, frozenset(flags))
