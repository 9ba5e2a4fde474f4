"""Risk rules as values: what each kind judges, where it applies (its scope), and what it does.

A rule either declines (with its kind's response code, or its own) or only flags: a flagged
request is journaled and logged with the rule's name, then goes on. Rules are read from TOML by
switch.risk.file; this module only says what a rule is.
"""

from __future__ import annotations

from typing import Callable, Union

import attrs

from switch.core.codes import RC
from switch.core.risk.facts import Facts
from switch.core.risk.generated import Code

DECLINE = "decline"
FLAG = "flag"
ACTIONS = (DECLINE, FLAG)
PRESENT = "present"
NOT_PRESENT = "not_present"
CHANNELS = (PRESENT, NOT_PRESENT)


@attrs.frozen
class BinRange:
    """Cards whose first len(low) digits lie in low..high; a prefix is a range of one."""

    low: str
    high: str

    def matches(self, pan: str) -> bool:
        return self.low <= pan[:len(self.low)] <= self.high

    def covers(self, other: BinRange) -> bool:
        """Every card `other` matches, this matches too."""
        if len(other.low) < len(self.low):  # a shorter range reaches cards this one may not
            return (other.low.ljust(len(self.low), "0") >= self.low
                    and other.high.ljust(len(self.low), "9") <= self.high)
        return self.low <= other.low[:len(self.low)] and other.high[:len(self.low)] <= self.high

    def __str__(self) -> str:
        return self.low if self.low == self.high else f"{self.low}-{self.high}"


# Scope dimensions that are sets of plain values, with the Facts attribute each compares.
SET_DIMENSIONS = {"issuers": "issuer", "terminals": "terminal", "acquirers": "acquirer",
                  "merchants": "merchant", "mccs": "mcc", "countries": "country"}


@attrs.frozen
class Scope:
    """Where a rule applies: every dimension given must hold (an empty one holds for all).

    A request that lacks a scoped value (no field 42 for a rule scoped to merchants) is outside
    that rule's scope."""

    bins: tuple[BinRange, ...] = ()
    issuers: frozenset[str] = frozenset()
    terminals: frozenset[str] = frozenset()
    acquirers: frozenset[str] = frozenset()
    merchants: frozenset[str] = frozenset()
    mccs: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    channel: str | None = None

    # The scope's test: None when every request is in it (nothing to call), else a function
    # written from `condition()`, the same test the engine's generated moments run inline.
    test: Callable[[Facts], bool] | None = attrs.field(init=False, eq=False, repr=False)

    @test.default
    def _build_test(self) -> Callable[[Facts], bool] | None:
        code = Code()
        condition = self.condition(code)
        if condition is None:
            return None
        code.add(f"return bool({condition})")
        test: Callable[[Facts], bool] = code.function("in_scope", "facts")
        return test

    def condition(self, code: Code) -> str | None:
        """This scope as a Python expression over the request's values (locals named as the
        Facts attributes), its constants named in `code`; None when every request is in it.
        Only the dimensions it restricts are tested."""
        tests = []
        if self.bins:
            ranges = [f"{code.constant('low', r.low)} <= pan[:{len(r.low)}] <= {code.constant('high', r.high)}"
                      for r in self.bins]
            tests.append(f"pan is not None and ({' or '.join(ranges)})")
        for dimension, attribute in SET_DIMENSIONS.items():
            allowed = getattr(self, dimension)
            if allowed:
                tests.append(f"{attribute} in {code.constant(dimension, allowed)}")
        if self.channel is not None:
            tests.append(f"channel == {self.channel!r}")
        return " and ".join(f"({test})" for test in tests) if tests else None

    @property
    def unrestricted(self) -> bool:
        """Every request is in scope."""
        return self.test is None

    def matches(self, facts: Facts) -> bool:
        return self.test is None or self.test(facts)

    def covers(self, other: Scope) -> bool:
        """Every request in `other`'s scope is in this one's (for dead-rule findings)."""
        if self.bins and not (other.bins and all(any(mine.covers(theirs) for mine in self.bins)
                                                  for theirs in other.bins)):
            return False
        for dimension in SET_DIMENSIONS:
            mine, theirs = getattr(self, dimension), getattr(other, dimension)
            if mine and not (theirs and theirs <= mine):
                return False
        return self.channel is None or self.channel == other.channel

    def overlaps(self, other: Scope) -> bool:
        """Some request could be in both scopes."""
        if self.bins and other.bins and not any(
                a.low[:min(len(a.low), len(b.low))] <= b.high[:min(len(a.low), len(b.low))]
                and b.low[:min(len(a.low), len(b.low))] <= a.high[:min(len(a.low), len(b.low))]
                for a in self.bins for b in other.bins):
            return False
        for dimension in SET_DIMENSIONS:
            mine, theirs = getattr(self, dimension), getattr(other, dimension)
            if mine and theirs and not mine & theirs:
                return False
        return self.channel is None or other.channel is None or self.channel == other.channel

    def describe(self) -> str:
        parts = [f"bins {', '.join(map(str, self.bins))}"] if self.bins else []
        parts += [f"{d} {', '.join(sorted(getattr(self, d)))}" for d in SET_DIMENSIONS if getattr(self, d)]
        if self.channel:
            parts.append(f"card {self.channel.replace('_', ' ')}")
        return "; ".join(parts) or "every request"


@attrs.frozen
class RuleBase:
    name: str
    scope: Scope
    action: str  # DECLINE or FLAG
    code: str  # the response code of a decline
    line: int | None  # where the rule is defined (findings, errors)


@attrs.frozen
class Velocity(RuleBase):
    """Approvals per card, terminal or merchant within a sliding window: beyond `max_count`
    the next request gets 65, beyond `max_amount` (this request's amount included) 61."""

    per: str  # card, terminal, merchant
    window: float  # seconds
    max_count: int | None
    max_amount: int | None  # minor units
    amount_code: str = RC.AMOUNT_LIMIT


@attrs.frozen
class CardTesting(RuleBase):
    """Declines (codes) for `distinct_cards` different cards from one terminal or merchant
    within `window` seconds: that terminal or merchant gets 59 for `cooldown` seconds, without
    its requests reaching an issuer."""

    per: str  # terminal, merchant
    distinct_cards: int
    window: float
    cooldown: float
    codes: frozenset[str]


@attrs.frozen
class Country(RuleBase):
    """The acquiring country (field 19) must be in `allow` (when given) and not in `deny`.
    A request without field 19 passes a deny list and fails an allow list: it cannot show that
    it comes from an allowed country."""

    allow: frozenset[str] | None
    deny: frozenset[str]


@attrs.frozen
class Travel(RuleBase):
    """Two card-present approvals of one card in two countries less than `min_interval`
    seconds apart: the second is declined (impossible travel)."""

    min_interval: float


@attrs.frozen
class AmountLimit(RuleBase):
    """An amount above `max_amount` is declined, or, with `require_pin`, declined only when the
    request carries no PIN (field 52)."""

    max_amount: int
    require_pin: bool


@attrs.frozen
class RateLimit(RuleBase):
    """A token bucket per connection or per terminal: `rate` requests a second, bursts of up to
    `burst`; the excess is answered 91 at once."""

    per: str  # connection, terminal
    rate: float
    burst: int


Rule = Union[Velocity, CardTesting, Country, Travel, AmountLimit, RateLimit]
KINDS: dict[str, type] = {"velocity": Velocity, "card_testing": CardTesting, "country": Country,
                          "travel": Travel, "amount": AmountLimit, "rate": RateLimit}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}
DEFAULT_CODES = {Velocity: RC.COUNT_LIMIT, CardTesting: RC.SUSPECTED_FRAUD, Country: RC.SUSPECTED_FRAUD,
                 Travel: RC.SUSPECTED_FRAUD, AmountLimit: RC.AMOUNT_LIMIT, RateLimit: RC.ISSUER_UNAVAILABLE}
# Declines that say a card was tried and failed: what card testing counts by default.
TESTING_DECLINES = frozenset({RC.CVV2_FAILED, RC.CVV_FAILED, RC.EXPIRED_CARD, RC.INVALID_CARD})


def kind_of(rule: Rule) -> str:
    return KIND_OF[type(rule)]


@attrs.frozen
class RuleSet:
    """The rules of one file, in file order; `source` names it in logs."""

    rules: tuple[Rule, ...] = ()
    source: str = ""

    def __len__(self) -> int:
        return len(self.rules)
