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
from typing import Callable, Hashable, Iterable, Protocol, Sequence

import attrs

from switch.core.codes import RC
from switch.core.risk.facts import Facts
from switch.core.risk.generated import Code
from switch.core.risk.rules import (
    DECLINE, FLAG, KIND_OF, PRESENT, AmountLimit, CardTesting, Country, RateLimit, Rule, RuleSet, Travel, Velocity,
)
from switch.core.risk.windows import (
    Cooldowns, DistinctWindow, Event, LastSeen, Reservation, SlidingTotals, TokenBuckets,
)


SWEEP_INTERVAL = 10.0  # seconds between sweeps of every rule's memory
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

    A plain class with slots and no __init__ (MAKE_ASSESSMENT makes one): one is made per
    request, and a class call that runs an __init__ written in Python (attrs' or by hand) costs
    half as much again as the object itself, in Python 3.11 a second run of the interpreter
    loop. Flags, travel rules and notes are tuples, the empty one (shared: nothing made) until
    one is added with `+=`, which most requests never do. Reservations stay a list: a request
    mostly has several, and a tuple grown by one per velocity rule cost more than the appends."""

    __slots__ = ("facts", "decline", "flags", "reserved", "travel", "noted")

    facts: Facts
    decline: Hit | None
    flags: tuple[Hit, ...]
    reserved: list[Reservation]  # velocity counts, kept on approval
    travel: tuple[TravelJudge, ...]  # travel rules in scope
    noted: tuple[str, ...]  # the travel and card-testing rules `settle` put it in

    @property
    def counted(self) -> list[str]:
        """The rules whose memory this request is in (journaled, for `replay`)."""
        return [*(window.name for window, _ in self.reserved), *self.noted]

    def hits(self) -> list[Hit]:
        """Every rule that spoke, the decline first."""
        return [self.decline, *self.flags] if self.decline else list(self.flags)


# An Assessment of `facts`, nothing found yet, as `found` (its reservations as `reserved`):
# lines the generated `assess` starts with, and the body of `new_assessment` for the rest.
MAKE_ASSESSMENT = ("found = Assessment()", "found.facts = facts", "found.decline = None",
                   "found.flags = found.travel = found.noted = ()", "found.reserved = reserved = []")


def _assessment_maker() -> Callable[[Facts], Assessment]:
    code = Code({"Assessment": Assessment})
    code.add(*MAKE_ASSESSMENT, "return found")
    maker: Callable[[Facts], Assessment] = code.function("new_assessment", "facts")
    return maker


new_assessment = _assessment_maker()


# What each `per` counts by: the Facts attribute, read as a local of the same name by the
# generated moments (switch.core.risk.generated).
KEY_ATTRIBUTE = {"card": "pan_hash", "terminal": "terminal", "merchant": "merchant", "connection": "connection"}


def _hit(rule: Rule, reason: str, code: str | None = None) -> Hit:
    return Hit(rule.name, rule.action, code or rule.code, reason)


def _seconds(span: float) -> str:
    return f"{span:g} s"


class Memory(Protocol):
    """A rule's memory (switch.core.risk.windows): keys held, and what has passed dropped."""

    def __len__(self) -> int: ...

    def forget(self, now: float) -> None: ...


# -- one judge per rule kind ----------------------------------------------------------------
#
# Each judge writes its rule's part of a generated moment (`lines`), run for a request in the
# rule's scope: a line that finds something assigns `hit` (a Hit, or None when it turns out to
# be nothing), and what the rule's action does with a hit follows it (`_moment`). `me` is the
# judge's name there; the request's values are locals named as the Facts attributes, with `now`
# and `found` (the Assessment). What is cheap to test is tested inline; the judge's methods do
# what needs its memory.

class VelocityJudge:
    def __init__(self, rule: Velocity) -> None:
        self.rule = rule
        self.totals = SlidingTotals(rule.window, rule.name,  # an absent limit infinite
                                    math.inf if rule.max_count is None else rule.max_count,
                                    math.inf if rule.max_amount is None else rule.max_amount)
        self.memories: tuple[Memory, ...] = (self.totals,)
        self.key = KEY_ATTRIBUTE[rule.per]

    def lines(self, code: Code, me: str) -> list[str]:
        # Counted and reserved in one call (SlidingTotals.count); an event comes back only
        # when this request is beyond a limit, and is taken back if this rule declines it.
        return [f"if {self.key} is not None:",
                f"    beyond = {code.constant('count', self.totals.count)}({self.key}, now, amount, reserved)",
                "    if beyond is not None:",
                f"        hit = {me}.beyond(beyond)"]

    def beyond(self, event: Event) -> Hit:
        """The hit of a request beyond a limit, its count taken back if this rule declines it."""
        count, _ = self.totals.totals(event.key, event.at)
        hit = self._beyond(count - 1)
        if hit.declines:
            self.totals.retract(event)
        return hit

    def _beyond(self, before: int) -> Hit:
        """The hit of a request beyond a limit, `before` approvals being in the window already."""
        rule = self.rule
        if before >= self.totals.max_count:
            return _hit(rule, f"{before} approvals per {rule.per} within {_seconds(rule.window)} "
                              f"(limit {rule.max_count})")
        return _hit(rule, f"amount per {rule.per} within {_seconds(rule.window)} would exceed "
                          f"{rule.max_amount}", rule.amount_code)

    def replay(self, facts: Facts, now: float) -> None:
        key = getattr(facts, self.key)
        if key is not None:
            self.totals.add(key, now, facts.amount)


class CardTestingJudge:
    def __init__(self, rule: CardTesting) -> None:
        self.rule = rule
        self.declined: DistinctWindow = DistinctWindow(rule.window)
        self.barred: Cooldowns = Cooldowns(rule.cooldown)
        self.memories: tuple[Memory, ...] = (self.declined, self.barred)
        self.key = KEY_ATTRIBUTE[rule.per]

    def lines(self, code: Code, me: str) -> list[str]:
        # A cool-down is rare: a request's key is looked for only when some key has one. Whether
        # the request's decline counts is for `settle` to find out, declines being rare too.
        return [f"if {code.constant('cooling', self.barred.until)}:",
                f"    hit = {me}.cooling_down({self.key}, now)"]

    def cooling_down(self, key: Hashable | None, now: float) -> Hit | None:
        if key is None or self.barred.active(key, now) is None:
            return None
        rule = self.rule
        return _hit(rule, f"{rule.per} cooling down after declines for {rule.distinct_cards} cards")

    def declined_for(self, facts: Facts, now: float) -> Alert | None:
        """A decline that card testing counts: a cool-down (and an alert) when it completes the set."""
        rule = self.rule
        key = getattr(facts, self.key)
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

    def lines(self, code: Code, me: str) -> list[str]:
        lines = [f"if country is not None and country in {code.constant('deny', self.rule.deny)}:",
                 f"    hit = {me}.denied(country)"]
        if self.rule.allow is not None:
            lines += [f"elif country not in {code.constant('allow', self.rule.allow)}:",
                      f"    hit = {me}.not_allowed(country)"]
        return lines

    def denied(self, country: str) -> Hit:
        return _hit(self.rule, f"acquiring country {country} is denied")

    def not_allowed(self, country: str | None) -> Hit:
        return _hit(self.rule, f"acquiring country {country or '(none)'} is not allowed")


class TravelJudge:
    def __init__(self, rule: Travel) -> None:
        self.rule = rule
        self.last: LastSeen = LastSeen(rule.min_interval)
        self.memories: tuple[Memory, ...] = (self.last,)

    def lines(self, code: Code, me: str) -> list[str]:
        # A card-present approval is noted at `settle` (found.travel); the country it was last
        # approved in is read here, inline (most cards have none within the interval).
        return [f"if channel == {PRESENT!r} and pan_hash is not None and country is not None:",
                f"    found.travel += {code.constant('travel', (self,))}",  # () + it: it, nothing made
                f"    seen = {code.constant('last', self.last.last)}.get(pan_hash)  # (country, when)",
                f"    if seen is not None and seen[0] != country and now - seen[1] < {self.rule.min_interval!r}:",
                f"        hit = {me}.moved(seen, country, now)"]

    def moved(self, seen: tuple[str, float], country: str, now: float) -> Hit:
        return _hit(self.rule, f"card present in {seen[0]} {now - seen[1]:.0f} s earlier, now in {country} "
                               f"(at least {_seconds(self.rule.min_interval)} apart)")


class AmountJudge:
    memories: tuple[Memory, ...] = ()

    def __init__(self, rule: AmountLimit) -> None:
        self.rule = rule
        if rule.require_pin:
            self.hit = _hit(rule, f"a PIN is required above {rule.max_amount}")
        else:
            self.hit = _hit(rule, f"amount above {rule.max_amount}")

    def lines(self, code: Code, me: str) -> list[str]:
        pin = " and not has_pin" if self.rule.require_pin else ""
        return [f"if amount > {self.rule.max_amount}{pin}:", f"    hit = {me}.hit"]


class RateJudge:
    def __init__(self, rule: RateLimit) -> None:
        self.rule = rule
        self.buckets: TokenBuckets = TokenBuckets(rule.rate, rule.burst)
        self.memories: tuple[Memory, ...] = (self.buckets,)
        self.key = KEY_ATTRIBUTE[rule.per]
        self.hit = _hit(rule, f"more than {rule.rate:g} requests a second per {rule.per} (burst {rule.burst})")

    def lines(self, code: Code, me: str) -> list[str]:
        take = code.constant("take", self.buckets.take)
        return [f"if {self.key} is not None and not {take}({self.key}, now):", f"    hit = {me}.hit"]


Judge = VelocityJudge | CardTestingJudge | CountryJudge | TravelJudge | AmountJudge
JUDGES: dict[type, type] = {Velocity: VelocityJudge, CardTesting: CardTestingJudge, Country: CountryJudge,
                            Travel: TravelJudge, AmountLimit: AmountJudge, RateLimit: RateJudge}


def _same_rule(a: Rule, b: Rule) -> bool:
    """The same definition wherever it sits in the file."""
    return type(a) is type(b) and attrs.evolve(a, line=None) == attrs.evolve(b, line=None)


class Sweeper:
    """Every rule's memory drops what has passed, also for keys and rules no request touches
    any more: every SWEEP_INTERVAL, tested by the generated moments themselves. Only memory
    depends on it (a structure drops what has passed from a key before it answers for it), so
    the interval is a trade of memory (what has passed is held up to that much longer) for the
    cost of a call per structure."""

    def __init__(self, memories: list[Memory]) -> None:
        self.memories = memories  # only what remembers: the memoryless rules are not in it
        self.due = -math.inf

    def sweep(self, now: float) -> None:
        self.due = now + SWEEP_INTERVAL
        for memory in self.memories:
            memory.forget(now)


def _declined(found: Assessment, hit: Hit) -> Assessment:
    found.decline = hit
    _release(found)
    return found


def _release(found: Assessment) -> None:
    for window, event in found.reserved:
        window.retract(event)
    found.reserved.clear()
    found.noted = ()


def _moment(name: str, judges: Sequence[Judge | RateJudge], sweeper: Sweeper, start: str, flag: str,
            decline: str, end: str) -> Callable[..., object]:
    """One moment of a request as a function of (facts, now): `start`, then each judge's lines
    in file order under its scope's test, each `hit = ...` of them followed by what the rule's
    action does with a hit: `flag` keeps it and goes on, `decline` returns; `end` when no rule
    declined."""
    code = Code({"sweeper": sweeper, "Assessment": Assessment, "declined": _declined})
    code.add("if now >= sweeper.due:", "    sweeper.sweep(now)", start)
    for judge in judges:
        rule = judge.rule
        code.add(f"# {rule.name!r}: {KIND_OF[type(rule)]}, {rule.action}")  # repr: a name is never code
        scope = rule.scope.condition(code)
        indent = 0
        if scope is not None:
            code.add(f"if {scope}:")
            indent = 1
        handle = flag if rule.action == FLAG else decline
        for line in judge.lines(code, code.constant("judge", judge)):
            code.add(line, indent=indent)
            if line.lstrip().startswith("hit = "):
                depth = indent + (len(line) - len(line.lstrip())) // 4
                code.add("if hit is not None:", indent=depth)
                code.add(handle, indent=depth + 1)
    code.add(end)
    return code.function(name, "facts, now")


class RiskEngine:
    """Every rule's judge, in file order, for the two moments of a request."""

    # The two moments, written for this rule set (see `_moment` and `source()`).
    throttle: Callable[[Facts, float], tuple[Hit | None, tuple[Hit, ...]]]
    """Rate limits: the decline (91) of a request beyond its bucket, and flags."""
    assess: Callable[[Facts, float], Assessment]
    """The other rules, in file order: the first decline ends it, flags are collected."""

    def __init__(self, rules: RuleSet, previous: RiskEngine | None = None) -> None:
        self.rules = rules
        kept = {judge.rule.name: judge for judge in (previous.judges if previous else ())}
        self.judges: list[Judge | RateJudge] = []
        for rule in rules.rules:
            old = kept.get(rule.name)
            self.judges.append(old if old is not None and _same_rule(old.rule, rule) else JUDGES[type(rule)](rule))
        rate = [j for j in self.judges if isinstance(j, RateJudge)]
        assessing = [j for j in self.judges if not isinstance(j, RateJudge)]
        self._testers = [(j, j.rule.scope.test, position) for position, j in enumerate(self.judges)
                         if isinstance(j, CardTestingJudge)]
        self._position = {judge.rule.name: position for position, judge in enumerate(self.judges)}
        self.rate_limited = bool(rate)
        self.assessing = bool(assessing)
        self.testing_codes = frozenset().union(*(j.rule.codes for j in self.judges if isinstance(j, CardTestingJudge)))
        self.longest = max((_memory(rule) for rule in rules.rules), default=0.0)
        self._memories = [memory for judge in self.judges for memory in judge.memories]
        sweeper = Sweeper(self._memories)
        self.throttle = _moment("throttle", rate, sweeper, "flags = ()", "flags += (hit,)",
                                "return hit, flags", "return None, flags")  # type: ignore[assignment]
        self.assess = _moment("assess", assessing, sweeper, "\n".join(MAKE_ASSESSMENT),
                              "found.flags += (hit,)", "return declined(found, hit)",
                              "return found")  # type: ignore[assignment]

    def source(self) -> str:
        """The generated moments' source, for reading (and tracebacks)."""
        return f"{self.throttle.__doc__}\n{self.assess.__doc__}"

    def settle(self, found: Assessment, code: str, now: float) -> tuple[Alert, ...]:
        """The request's outcome (its response code): approvals keep what was reserved, anything
        else frees it; declines that card testing counts may start a cool-down."""
        if code == APPROVED:
            if found.travel:
                facts = found.facts  # card present, with a PAN hash and a country (`assess` checked)
                for judge in found.travel:
                    judge.last.note(facts.pan_hash, facts.country, now)  # type: ignore[arg-type]
                    found.noted += (judge.rule.name,)
            return ()
        _release(found)
        if code not in self.testing_codes:
            return ()
        alerts: tuple[Alert, ...] = ()
        for tester in self._testers_reached(found):
            if code in tester.rule.codes:
                found.noted += (tester.rule.name,)
                alert = tester.declined_for(found.facts, now)
                if alert is not None:
                    alerts += (alert,)
        return alerts

    def _testers_reached(self, found: Assessment) -> list[CardTestingJudge]:
        """The card-testing rules whose scope the request is in, with its key, and that the
        assessment reached: up to the rule that declined it, if one did."""
        facts = found.facts
        reached = self._position[found.decline.rule] if found.decline else len(self.judges)
        return [judge for judge, matches, position in self._testers
                if position <= reached and (matches is None or matches(facts)) and getattr(facts, judge.key) is not None]

    def declined_unassessed(self, facts: Facts, code: str, now: float) -> tuple[list[str], tuple[Alert, ...]]:
        """A decline before assessment (no route for the card, 15): card testing counts it too."""
        if code not in self.testing_codes:
            return [], ()
        found = new_assessment(facts)
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
