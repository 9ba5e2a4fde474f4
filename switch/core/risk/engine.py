"""The risk engine: judges each request against the rules, remembers what it must.

Two moments per request. `throttle()` (rate limits) runs before anything else for
authorisations, so a terminal that never stops sending costs one token-bucket look-up per
request. `assess()` runs once the card is routed, rule by rule in file order; the first decline
ends it, flags are collected. After the answer, `settle()` tells the engine the outcome:
approvals keep the velocity counts that `assess()` reserved (reserving first means a burst of
parallel requests for one card cannot all pass before any is counted), declines free them and
feed card-testing detection, card-present approvals note where the card was.

Each rule's judge keeps its own state; a reload keeps the state of every rule that is still
defined the same way. `replay()` rebuilds the state from the journal at start.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Callable, Hashable, Iterable, Protocol

import attrs

from switch.core.codes import RC
from switch.core.risk.facts import Facts
from switch.core.risk.rules import (
    DECLINE, PRESENT, AmountLimit, CardTesting, Country, RateLimit, Rule, RuleSet, Travel, Velocity,
)
from switch.core.risk.windows import (
    TOTALS, Cooldowns, DistinctWindow, Event, LastSeen, SlidingTotals, TokenBuckets,
)


SWEEP_INTERVAL = 1.0  # seconds between sweeps of every rule's memory
APPROVED = RC.APPROVED  # compared on every request: an enum member's look-up costs as much as the compare


@attrs.frozen
class Hit:
    """A rule that found something: it declines (`code`) or flags the request."""

    rule: str
    action: str
    code: str
    reason: str  # what it found, never a card value

    @property
    def declines(self) -> bool:
        return self.action == DECLINE

    def describe(self) -> str:
        verb = "declined by" if self.declines else "flagged by"
        return f"{verb} {self.rule}: {self.reason}"


@attrs.frozen
class Alert:
    """Worth an operator's attention now (the service logs it): a card-testing cool-down started."""

    rule: str
    per: str
    key: str
    cards: int
    window: float
    cooldown: float


class Assessment:
    """What `assess()` found for one request, and what `settle()` must confirm or undo.

    A plain class with slots, not attrs: one is made per request, and attrs' generated
    __init__ (a factory call per list) costs twice this one."""

    __slots__ = ("facts", "decline", "flags", "reserved", "testing", "travel", "counted")

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.decline: Hit | None = None
        self.flags: list[Hit] = []
        self.reserved: list[tuple[VelocityJudge, Hashable, Event]] = []
        self.testing: list[CardTestingJudge] = []  # card-testing rules in scope
        self.travel: list[TravelJudge] = []  # travel rules in scope
        self.counted: list[str] = []  # rules whose memory this request is in (journaled)

    def hits(self) -> list[Hit]:
        """Every rule that spoke, the decline first."""
        return ([self.decline] if self.decline else []) + self.flags


# What each `per` counts by, read from the request's facts.
_KEY_OF: dict[str, Callable[[Facts], Hashable | None]] = {
    "card": attrgetter("pan_hash"), "terminal": attrgetter("terminal"), "merchant": attrgetter("merchant"),
    "connection": attrgetter("connection"),
}


def _hit(rule: Rule, reason: str, code: str | None = None) -> Hit:
    return Hit(rule.name, rule.action, code or rule.code, reason)


def _seconds(span: float) -> str:
    return f"{span:g} s"


class Memory(Protocol):
    """A rule's memory (switch.core.risk.windows): keys held, and what has passed dropped."""

    def __len__(self) -> int: ...

    def forget(self, now: float) -> None: ...


# -- one judge per rule kind ----------------------------------------------------------------

class VelocityJudge:
    def __init__(self, rule: Velocity) -> None:
        self.rule = rule
        self.totals: SlidingTotals[Hashable] = SlidingTotals(rule.window)
        self.memories: tuple[Memory, ...] = (self.totals,)
        self.key_of = _KEY_OF[rule.per]
        # The limits as numbers, an absent one infinite: one comparison each on the way through.
        self.max_count = math.inf if rule.max_count is None else rule.max_count
        self.max_amount = math.inf if rule.max_amount is None else rule.max_amount

    def assess(self, facts: Facts, now: float, found: Assessment) -> Hit | None:
        key = self.key_of(facts)
        if key is None:
            return None
        # Counted first (one look-up of the key), taken back when this rule declines it: with
        # this request counted, a total beyond its limit makes this request the one too many.
        event = self.totals.add(key, now, facts.amount)
        count, amount = event[TOTALS]
        hit = None if count <= self.max_count and amount <= self.max_amount else self._beyond(count - 1)
        if hit is not None and hit.declines:
            self.totals.retract(key, event)
        else:
            found.reserved.append((self, key, event))
            found.counted.append(self.rule.name)
        return hit

    def _beyond(self, before: int) -> Hit:
        """The hit of a request beyond a limit, `before` approvals being in the window already."""
        rule = self.rule
        if before >= self.max_count:
            return _hit(rule, f"{before} approvals per {rule.per} within {_seconds(rule.window)} "
                              f"(limit {rule.max_count})")
        return _hit(rule, f"amount per {rule.per} within {_seconds(rule.window)} would exceed "
                          f"{rule.max_amount}", rule.amount_code)

    def replay(self, facts: Facts, now: float) -> None:
        key = self.key_of(facts)
        if key is not None:
            self.totals.add(key, now, facts.amount)


class CardTestingJudge:
    def __init__(self, rule: CardTesting) -> None:
        self.rule = rule
        self.declined: DistinctWindow[Hashable] = DistinctWindow(rule.window)
        self.barred: Cooldowns[Hashable] = Cooldowns(rule.cooldown)
        self.memories: tuple[Memory, ...] = (self.declined, self.barred)
        self.key_of = _KEY_OF[rule.per]

    def assess(self, facts: Facts, now: float, found: Assessment) -> Hit | None:
        rule = self.rule
        key = self.key_of(facts)
        if key is None:
            return None
        found.testing.append(self)
        if self.barred.active(key, now) is None:
            return None
        return _hit(rule, f"{rule.per} cooling down after declines for {rule.distinct_cards} cards")

    def declined_for(self, facts: Facts, now: float) -> Alert | None:
        """A decline that card testing counts: a cool-down (and an alert) when it completes the set."""
        rule = self.rule
        key = self.key_of(facts)
        if key is None or facts.pan_hash is None:
            return None
        cards = self.declined.add(key, now, facts.pan_hash)
        if cards < rule.distinct_cards:
            return None
        self.declined.clear(key)
        if rule.action == DECLINE:
            self.barred.start(key, now)
        return Alert(rule.name, rule.per, str(key), cards, rule.window, rule.cooldown if rule.action == DECLINE else 0)


class CountryJudge:
    memories: tuple[Memory, ...] = ()

    def __init__(self, rule: Country) -> None:
        self.rule = rule

    def assess(self, facts: Facts, now: float, found: Assessment) -> Hit | None:
        rule, country = self.rule, facts.country
        if country is not None and country in rule.deny:
            return _hit(rule, f"acquiring country {country} is denied")
        if rule.allow is not None and country not in rule.allow:
            return _hit(rule, f"acquiring country {country or '(none)'} is not allowed")
        return None


class TravelJudge:
    def __init__(self, rule: Travel) -> None:
        self.rule = rule
        self.last: LastSeen[Hashable] = LastSeen(rule.min_interval)
        self.memories: tuple[Memory, ...] = (self.last,)

    def assess(self, facts: Facts, now: float, found: Assessment) -> Hit | None:
        if facts.channel != PRESENT or facts.pan_hash is None or facts.country is None:
            return None
        found.travel.append(self)
        seen = self.last.get(facts.pan_hash, now)
        if seen is None or seen[0] == facts.country:
            return None
        return _hit(self.rule, f"card present in {seen[0]} {now - seen[1]:.0f} s earlier, now in {facts.country} "
                               f"(at least {_seconds(self.rule.min_interval)} apart)")

    def approved(self, facts: Facts, now: float) -> None:
        assert facts.pan_hash is not None and facts.country is not None  # checked in assess
        self.last.note(facts.pan_hash, facts.country, now)


class AmountJudge:
    memories: tuple[Memory, ...] = ()

    def __init__(self, rule: AmountLimit) -> None:
        self.rule = rule

    def assess(self, facts: Facts, now: float, found: Assessment) -> Hit | None:
        rule = self.rule
        if facts.amount <= rule.max_amount:
            return None
        if rule.require_pin:
            return None if facts.has_pin else _hit(rule, f"a PIN is required above {rule.max_amount}")
        return _hit(rule, f"amount above {rule.max_amount}")


class RateJudge:
    def __init__(self, rule: RateLimit) -> None:
        self.rule = rule
        self.buckets: TokenBuckets[Hashable] = TokenBuckets(rule.rate, rule.burst)
        self.memories: tuple[Memory, ...] = (self.buckets,)
        self.key_of = _KEY_OF[rule.per]

    def throttle(self, facts: Facts, now: float) -> Hit | None:
        rule = self.rule
        key = self.key_of(facts)
        if key is None or self.buckets.take(key, now):
            return None
        return _hit(rule, f"more than {rule.rate:g} requests a second per {rule.per} (burst {rule.burst})")


Judge = VelocityJudge | CardTestingJudge | CountryJudge | TravelJudge | AmountJudge
JUDGES: dict[type, type] = {Velocity: VelocityJudge, CardTesting: CardTestingJudge, Country: CountryJudge,
                            Travel: TravelJudge, AmountLimit: AmountJudge, RateLimit: RateJudge}


def _same_rule(a: Rule, b: Rule) -> bool:
    """The same definition wherever it sits in the file."""
    return type(a) is type(b) and attrs.evolve(a, line=None) == attrs.evolve(b, line=None)


class RiskEngine:
    """Every rule's judge, in file order, for the two moments of a request."""

    def __init__(self, rules: RuleSet, previous: RiskEngine | None = None) -> None:
        self.rules = rules
        kept = {judge.rule.name: judge for judge in (previous.judges if previous else ())}
        self.judges: list[Judge | RateJudge] = []
        for rule in rules.rules:
            old = kept.get(rule.name)
            self.judges.append(old if old is not None and _same_rule(old.rule, rule) else JUDGES[type(rule)](rule))
        # Each moment's judges as (bound method, scope test or None): what runs per request.
        self._rate = [(j.throttle, j.rule.scope.test) for j in self.judges if isinstance(j, RateJudge)]
        self._assessing = [(j.assess, j.rule.scope.test) for j in self.judges if not isinstance(j, RateJudge)]
        self._testers = [(j, j.rule.scope.test) for j in self.judges if isinstance(j, CardTestingJudge)]
        self.rate_limited = bool(self._rate)
        self.assessing = bool(self._assessing)
        self.testing_codes = frozenset().union(*(j.rule.codes for j in self.judges if isinstance(j, CardTestingJudge)))
        self.longest = max((_memory(rule) for rule in rules.rules), default=0.0)
        # Every structure that remembers, for the sweep: the memoryless rules are not in it.
        self._memories = [memory for judge in self.judges for memory in judge.memories]
        self._next_sweep = -float("inf")

    def _sweep(self, now: float) -> None:
        """Every rule's memory drops what has passed, also for keys and rules no request touches
        any more. Once a second at most: its callers test `_next_sweep` themselves (a call per
        moment of every request saved)."""
        self._next_sweep = now + SWEEP_INTERVAL
        for memory in self._memories:
            memory.forget(now)

    def throttle(self, facts: Facts, now: float) -> tuple[Hit | None, list[Hit]]:
        """Rate limits: the decline (91) of a request beyond its bucket, and flags."""
        if now >= self._next_sweep:
            self._sweep(now)
        flags: list[Hit] = []
        for throttle, matches in self._rate:
            if matches is None or matches(facts):
                hit = throttle(facts, now)
                if hit is not None:
                    if hit.declines:
                        return hit, flags
                    flags.append(hit)
        return None, flags

    def assess(self, facts: Facts, now: float) -> Assessment:
        if now >= self._next_sweep:
            self._sweep(now)
        found = Assessment(facts)
        for judge, matches in self._assessing:  # each judge's bound assess()
            if matches is not None and not matches(facts):
                continue
            hit = judge(facts, now, found)
            if hit is None:
                continue
            if hit.declines:
                found.decline = hit
                self._release(found)
                return found
            found.flags.append(hit)
        return found

    def settle(self, found: Assessment, code: str, now: float) -> list[Alert]:
        """The request's outcome (its response code): approvals keep what was reserved, anything
        else frees it; declines that card testing counts may start a cool-down."""
        if code == APPROVED:
            for judge in found.travel:
                judge.approved(found.facts, now)
                found.counted.append(judge.rule.name)
            return []
        self._release(found)
        if code not in self.testing_codes:
            return []
        alerts = []
        for tester in found.testing:
            if code in tester.rule.codes:
                found.counted.append(tester.rule.name)
                alert = tester.declined_for(found.facts, now)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def declined_unassessed(self, facts: Facts, code: str, now: float) -> tuple[list[str], list[Alert]]:
        """A decline before assessment (no route for the card, 15): card testing counts it too."""
        if code not in self.testing_codes:
            return [], []
        found = Assessment(facts)
        found.testing = [j for j, matches in self._testers
                         if (matches is None or matches(facts)) and j.key_of(facts)]
        alerts = self.settle(found, code, now)
        return found.counted, alerts

    def replay(self, facts: Facts, code: str, counted: Iterable[str], at: float) -> None:
        """A journaled request, `at` on the engine's clock, back into the memory of the rules it
        counted in (rules since changed start empty)."""
        names = set(counted)
        for judge in self.judges:
            if judge.rule.name not in names:
                continue
            if isinstance(judge, VelocityJudge) and code == APPROVED:
                judge.replay(facts, at)
            elif isinstance(judge, CardTestingJudge) and code in judge.rule.codes:
                judge.declined_for(facts, at)
            elif isinstance(judge, TravelJudge) and code == APPROVED and facts.pan_hash and facts.country:
                judge.last.note(facts.pan_hash, facts.country, at)

    def _release(self, found: Assessment) -> None:
        for judge, key, event in found.reserved:
            judge.totals.retract(key, event)
        found.reserved.clear()
        found.counted.clear()

    def held(self) -> int:
        """Keys held across every rule's memory (bounded by the traffic within the windows)."""
        return sum(len(memory) for memory in self._memories)


def _memory(rule: Rule) -> float:
    """How far back the journal must be replayed for this rule's state."""
    if isinstance(rule, Velocity):
        return rule.window
    if isinstance(rule, CardTesting):
        return rule.window + rule.cooldown
    if isinstance(rule, Travel):
        return rule.min_interval
    return 0.0
