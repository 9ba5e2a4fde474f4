"""Risk rules files: TOML read into switch.core.risk.rules values, every mistake named.

`read_rules_file` reads what it can and notes a Finding per rule that cannot be read (for
`cardswitch risk check`); `load_rules` is what the switch uses at start and on reload: the
first error stops it, as a one-line ConfigError (file:line: rules[i].key: what was expected).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from switch.core.codes import RC
from switch.core.risk.rules import (
    ACTIONS, CHANNELS, DECLINE, DEFAULT_CODES, KINDS, SET_DIMENSIONS, TESTING_DECLINES, AmountLimit, BinRange,
    CardTesting, Country, RateLimit, Rule, RuleSet, Scope, Travel, Velocity,
)
from switch.errors import ConfigError
from switch.findings import ERROR, Finding
from switch.routes.lines import header_lines
from switch.routes.source import parse_toml, read_text
from switch.tomlfile import Table

PERS = {Velocity: ("card", "terminal", "merchant"), CardTesting: ("terminal", "merchant"),
        RateLimit: ("connection", "terminal")}
RESPONSE_CODES = frozenset(RC)


@attrs.frozen
class RulesFile:
    path: str
    rules: RuleSet
    problems: tuple[Finding, ...] = ()
    keys: dict[str, str] = attrs.Factory(dict)  # rule name -> "rules[3]": where findings say it is


def load_rules(path: str | Path) -> RuleSet:
    """The rules of `path`, or a ConfigError naming the first problem."""
    read = read_rules_file(path)
    for problem in read.problems:
        raise ConfigError(problem.location(read.path), problem.key or "(file)", problem.message)
    return read.rules


def read_rules_file(path: str | Path) -> RulesFile:
    """Every rule that can be read, and a Finding for each that cannot; a file that cannot be
    read at all raises ConfigError."""
    path = Path(path)
    text = read_text(path)
    top = Table(path, "", parse_toml(path, text))
    raw = top.tables("rules")
    top.finish()
    found = header_lines(text, "rules", len(raw))
    lines: list[int | None] = list(found) if found is not None else [None] * len(raw)
    rules: list[Rule] = []
    problems: list[Finding] = []
    names: dict[str, int | None] = {}
    keys: dict[str, str] = {}
    for table, line in zip(raw, lines):
        try:
            rule = _rule(table, line, path.parent)
        except ConfigError as exc:
            problems.append(Finding(ERROR, line, exc.key, exc.expected))
            continue
        if rule.name in names:
            where = f" (line {names[rule.name]})" if names[rule.name] else ""
            problems.append(Finding(ERROR, line, f"{table.where}.name",
                                    f"a unique name, but {rule.name!r} is defined earlier{where}"))
            continue
        names[rule.name] = line
        keys[rule.name] = table.where
        rules.append(rule)
    return RulesFile(str(path), RuleSet(tuple(rules), str(path)), tuple(problems), keys)


def _rule(table: Table, line: int | None, base: Path) -> Rule:
    name = table.get("name", str, expected="a rule name", check=lambda v: bool(v.strip()))
    kind = table.get("kind", str, expected=f"one of {', '.join(KINDS)}", check=lambda v: v in KINDS)
    cls = KINDS[kind]
    action = table.get("action", str, DECLINE, f"one of {', '.join(ACTIONS)}", lambda v: v in ACTIONS)
    code = table.get("code", str, DEFAULT_CODES[cls], "a response code the switch knows (e.g. 59)",
                     lambda v: v in RESPONSE_CODES)
    common: dict[str, Any] = {"name": name, "scope": _scope(table), "action": action, "code": code, "line": line}
    if cls in PERS:
        common["per"] = table.get("per", str, expected=f"one of {', '.join(PERS[cls])}", check=lambda v: v in PERS[cls])
    rule = _KIND_READERS[cls](table, common, base)
    table.finish()
    return rule


def _scope(table: Table) -> Scope:
    bins = tuple(_bin_range(table, text) for text in _strings(table, "bins", "BIN prefixes or LOW-HIGH ranges"))
    sets = {dimension: frozenset(_strings(table, dimension, f"a list of {dimension.rstrip('s')} values"))
            for dimension in SET_DIMENSIONS}
    for dimension, width in (("mccs", 4), ("countries", 3)):
        if any(not (v.isdigit() and len(v) == width) for v in sets[dimension]):
            raise table.error(dimension, f"a list of {width}-digit codes")
    channel = table.get("channel", str, None, f"one of {', '.join(CHANNELS)}", lambda v: v in CHANNELS)
    return Scope(bins=bins, channel=channel, **sets)


def _strings(table: Table, name: str, expected: str) -> list[str]:
    values = table.get(name, list, [], expected)
    if not all(isinstance(v, str) and v for v in values):
        raise table.error(name, f"{expected}, as strings")
    return values


def _bin_range(table: Table, text: str) -> BinRange:
    low, _, high = text.partition("-")
    high = high or low
    if not (low.isdigit() and high.isdigit() and len(low) == len(high) and 1 <= len(low) <= 19 and low <= high):
        raise table.error("bins", f"BIN prefixes or LOW-HIGH ranges of equal length, low <= high (not {text!r})")
    return BinRange(low, high)


def _seconds(table: Table, name: str, default: Any = None) -> float:
    extra = {} if default is None else {"default": default}
    value: float = table.get(name, (int, float), expected="seconds, more than 0", check=lambda v: v > 0, **extra)
    return float(value)


def _positive(table: Table, name: str, default: Any = None) -> Any:
    extra = {} if default is None else {"default": default}
    return table.get(name, int, expected="an integer, at least 1", check=lambda v: v >= 1, **extra)


def _velocity(table: Table, common: dict[str, Any], base: Path) -> Velocity:
    max_count = table.get("max_count", int, None, "an integer, at least 1", lambda v: v >= 1)
    max_amount = table.get("max_amount", int, None, "an amount in minor units, at least 1", lambda v: v >= 1)
    if max_count is None and max_amount is None:
        raise table.error("max_count", "max_count, max_amount or both")
    amount_code = table.get("amount_code", str, RC.AMOUNT_LIMIT, "a response code the switch knows (e.g. 61)",
                            lambda v: v in RESPONSE_CODES)
    return Velocity(**common, window=_seconds(table, "window_s"), max_count=max_count, max_amount=max_amount,
                    amount_code=amount_code)


def _card_testing(table: Table, common: dict[str, Any], base: Path) -> CardTesting:
    codes = frozenset(table.get("codes", list, sorted(TESTING_DECLINES), "a list of response codes",
                                lambda v: bool(v) and all(c in RESPONSE_CODES for c in v)))
    return CardTesting(**common, distinct_cards=_positive(table, "distinct_cards"), window=_seconds(table, "window_s"),
                       cooldown=_seconds(table, "cooldown_s"), codes=codes)


def _country(table: Table, common: dict[str, Any], base: Path) -> Country:
    def codes(name: str) -> list[str]:
        values = _strings(table, name, "a list of 3-digit ISO 3166 country codes")
        if any(not (v.isdigit() and len(v) == 3) for v in values):
            raise table.error(name, "a list of 3-digit ISO 3166 numeric country codes")
        return values
    allow = codes("allow") if "allow" in table.data else None
    deny = set(codes("deny"))
    deny_file = table.get("deny_file", str, None, "a file of 3-digit country codes, one a line")
    if deny_file is not None:
        deny |= _country_file(table, base / deny_file)
    if allow is None and not deny:
        raise table.error("deny", "allow, deny or deny_file: the countries the rule is about")
    return Country(**common, allow=frozenset(allow) if allow is not None else None, deny=frozenset(deny))


def _country_file(table: Table, path: Path) -> set[str]:
    """A sanctions list: one 3-digit country code a line; `#` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise table.error("deny_file", f"a readable file ({path}: {exc.strerror})") from None
    codes = set()
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0].strip()
        if not code:
            continue
        if not (code.isdigit() and len(code) == 3):
            raise table.error("deny_file", f"3-digit country codes, one a line ({path}:{number} is not one)")
        codes.add(code)
    return codes


def _travel(table: Table, common: dict[str, Any], base: Path) -> Travel:
    return Travel(**common, min_interval=_seconds(table, "min_interval_s"))


def _amount(table: Table, common: dict[str, Any], base: Path) -> AmountLimit:
    require_pin = table.get("require_pin", bool, False, "true or false")
    if require_pin and "code" not in table.data:
        common["code"] = RC.PIN_REQUIRED
    return AmountLimit(**common, max_amount=table.get("max_amount", int, expected="an amount in minor units, 0 or more",
                                                      check=lambda v: v >= 0), require_pin=require_pin)


def _rate(table: Table, common: dict[str, Any], base: Path) -> RateLimit:
    rate = table.get("per_second", (int, float), expected="requests a second, more than 0", check=lambda v: v > 0)
    return RateLimit(**common, rate=float(rate), burst=_positive(table, "burst"))


_KIND_READERS: dict[type, Any] = {Velocity: _velocity, CardTesting: _card_testing, Country: _country,
                                  Travel: _travel, AmountLimit: _amount, RateLimit: _rate}
