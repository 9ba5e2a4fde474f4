"""`risk check`: what is wrong with a risk rules file, rule by rule, with line numbers.

Rules work together, not as exceptions to each other: every rule whose scope holds judges the
request, in file order, and the first decline ends it; a request goes on only if no rule
declines it, and a flag changes nothing but the journal and the log. The findings follow from
that. "Covers" below is `Scope.covers`: every request in one scope is in the other.

Errors (exit 1):

- unreadable: what switch.risk.read_rules_file finds (a bad value, an unknown key, a repeated
  name). The switch refuses the file.
- allowed and denied: a country rule that lists a country in both `allow` and `deny`. The deny
  wins, and the allow list says otherwise.
- no exception: a declining country rule allows a country that another declining country rule,
  whose scope covers this one's, denies. The allow can never let such a request through. A
  narrower deny inside a wider allow is a specialisation, and scopes that only overlap are
  layers (each applies where the other does not). Neither is reported.
- conflict: two rules with the same condition but different outcomes, where only file order
  decides which one answers. The same condition means the same kind and scope (BIN ranges in
  any order) and the same parameters (per, window, limits, countries...). A different outcome
  means decline against flag, or two different response codes.
- with --config: an issuer named in a scope that the switch config does not define.

Warnings:

- an empty file (no `[[rules]]`).
- duplicate: the same condition and outcome as an earlier rule.
- dead, by another rule: whenever this rule would fire, a declining rule of the same kind
  declines the same request. That rule's scope covers this one's, and then, by kind:
  velocity: same per and window, and each limit this rule has, that rule has too, as low or
  lower (it counts the same approvals and more, so it reaches its limits first); amount: a
  limit as low, and a PIN required only if this rule requires one too; rate: same per, no
  higher rate and no larger burst (its bucket never holds more tokens than this one's);
  country: it fires on every country (or missing field 19) that this rule fires on; travel:
  the same scope and a `min_interval_s` at least as long (both note the same approvals).
  Card-testing rules are only compared as duplicates: a wider scope reaches its count
  earlier, and then its cool-down also ends earlier. File order does not matter. When the
  other rule comes first, this one is never reached at the moment it would fire. When this
  one comes first, it declines only requests that the other would decline a moment later, so
  only the rule named in the journal (and perhaps the code) differ, and a flag on a request
  that is declined anyway changes nothing. Of two rules that make each other dead, only the
  later one is reported.
- dead, by itself: a country rule that fires on none of the countries its scope names; a
  travel rule that can never see a card in two countries (a card-not-present scope, or a
  scope of one country); an amount rule whose limit no 12-digit field 4 exceeds.
- allows nothing: a country rule whose allow list, minus its deny list, is empty. It declines
  (or flags) every request in its scope, which is rarely what was meant.
- redundant deny: deny-list countries that the same rule's allow list already leaves out.
- with --config: a BIN range in a scope that no route reaches, so the rule never sees those
  cards.
"""

from __future__ import annotations

from typing import Any, Collection, Iterator

import attrs

from switch.core.risk.rules import (
    DECLINE, NOT_PRESENT, AmountLimit, Country, RateLimit, Rule, Scope, Travel, Velocity,
)
from switch.findings import ERROR, WARNING, Finding
from switch.risk import RulesFile
from switch.routing import RoutingTable

LARGEST_AMOUNT = 10**12 - 1  # field 4 is n12, in minor units
_SHOWN = 5  # countries named in a message before "..."


def check(read: RulesFile, issuers: Collection[str] | None = None,
          routing: RoutingTable | None = None) -> list[Finding]:
    """All findings, ordered by line (file-level ones first). `issuers` and `routing` are a
    switch config's, to check the rules against it."""
    names = _Names(read)
    rules = read.rules.rules
    findings = list(read.problems)
    if not rules and not read.problems:
        findings.append(Finding(WARNING, None, "", "no [[rules]]: the switch would judge nothing"))
    for rule in rules:
        findings += _alone(rule, names)
    findings += _same_conditions(rules, names)
    findings += _dead(rules, names)
    findings += _no_exception(rules, names)
    if issuers is not None:
        findings += _undefined_issuers(rules, set(issuers), names)
    if routing is not None:
        findings += _unrouted(rules, routing, names)
    return sorted(findings, key=lambda finding: (finding.line or 0, finding.severity != ERROR))


class _Names:
    """How findings name a rule: by its table (`rules[3]`) and, for another rule, its name and line."""

    def __init__(self, read: RulesFile) -> None:
        self._keys = read.keys

    def key(self, rule: Rule, attribute: str = "") -> str:
        key = self._keys.get(rule.name, "rules")
        return f"{key}.{attribute}" if attribute else key

    def where(self, rule: Rule) -> str:
        line = f" (line {rule.line})" if rule.line else ""
        return f"{self.key(rule)} {rule.name!r}{line}"


def _countries(codes: Collection[str]) -> str:
    shown = sorted(codes)
    return ", ".join(shown[:_SHOWN]) + (f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else "")


def _verb(rule: Rule) -> str:
    return "declines" if rule.action == DECLINE else "flags"


# -- one rule on its own ----------------------------------------------------------------------

def _alone(rule: Rule, names: _Names) -> Iterator[Finding]:
    never = _never_fires(rule)
    if never is not None:
        attribute, why = never
        yield Finding(WARNING, rule.line, names.key(rule, attribute), f"dead: {why}")
    if isinstance(rule, Country) and rule.allow is not None:
        both = rule.allow & rule.deny
        if both:
            yield Finding(ERROR, rule.line, names.key(rule, "allow"),
                          f"{_countries(both)} both allowed and denied (the deny wins)")
        if not rule.allow - rule.deny:
            yield Finding(WARNING, rule.line, names.key(rule, "allow"),
                          f"allows no country: it {_verb(rule)} every request in its scope")
        left_out = rule.deny - rule.allow
        if left_out:
            yield Finding(WARNING, rule.line, names.key(rule, "deny"),
                          f"denies {_countries(left_out)}, which the allow list leaves out already: no change")


def _never_fires(rule: Rule) -> tuple[str, str] | None:
    """The key that makes the rule dead by itself, and why; None when it can fire."""
    if isinstance(rule, Country):
        if rule.scope.countries and not any(_fires(rule, country) for country in rule.scope.countries):
            return "countries", f"it never fires for the countries its scope names ({_countries(rule.scope.countries)})"
    elif isinstance(rule, Travel):
        if rule.scope.channel == NOT_PRESENT:
            return "channel", "travel is judged on card-present requests only, and the scope is card not present"
        if len(rule.scope.countries) == 1:
            return "countries", "a scope of one country never sees a card in two"
    elif isinstance(rule, AmountLimit) and rule.max_amount >= LARGEST_AMOUNT:
        return "max_amount", f"no amount in field 4 (12 digits) is above {rule.max_amount}"
    return None


def _fires(rule: Country, country: str | None) -> bool:
    """Whether the rule fires for a request from `country` (None: no field 19), as its judge does."""
    return (country is not None and country in rule.deny) or (rule.allow is not None and country not in rule.allow)


# -- pairs of rules -----------------------------------------------------------------------------

def _condition(rule: Rule) -> Rule:
    """The rule without its name, place, outcome and scope: what decides when it fires."""
    blank: dict[str, Any] = {"name": "", "line": None, "action": DECLINE, "code": "", "scope": Scope()}
    if isinstance(rule, Velocity):
        blank["amount_code"] = ""
    return attrs.evolve(rule, **blank)


def _outcome(rule: Rule) -> tuple[str | None, ...]:
    """What the rule does when it fires: a flag, or a decline with its code(s)."""
    if rule.action != DECLINE:
        return (rule.action,)
    amount_code = rule.amount_code if isinstance(rule, Velocity) and rule.max_amount is not None else None
    return (DECLINE, rule.code, amount_code)


def _equivalent(a: Scope, b: Scope) -> bool:
    return a.covers(b) and b.covers(a)


def _same_condition(a: Rule, b: Rule) -> bool:
    return _condition(a) == _condition(b) and _equivalent(a.scope, b.scope)


def _same_conditions(rules: tuple[Rule, ...], names: _Names) -> Iterator[Finding]:
    """Conflicts and duplicates, reported at the later rule against the first earlier one."""
    for index, rule in enumerate(rules):
        earlier = next((other for other in rules[:index] if _same_condition(other, rule)), None)
        if earlier is None:
            continue
        if _outcome(earlier) == _outcome(rule):
            yield Finding(WARNING, rule.line, names.key(rule),
                          f"duplicate: the same condition and outcome as {names.where(earlier)}")
        else:
            yield Finding(ERROR, rule.line, names.key(rule),
                          f"conflict: the same condition as {names.where(earlier)}, but it {_does(rule)} "
                          f"where that one {_does(earlier)}; only file order decides")


def _does(rule: Rule) -> str:
    if rule.action != DECLINE:
        return "flags"
    amount = f" (amount limit {rule.amount_code})" if isinstance(rule, Velocity) and rule.max_amount is not None else ""
    return f"declines with {rule.code}{amount}"


def _dead(rules: tuple[Rule, ...], names: _Names) -> Iterator[Finding]:
    for index, rule in enumerate(rules):
        for other_index, other in enumerate(rules):
            if other is rule or other.action != DECLINE or _same_condition(other, rule) or _never_fires(rule):
                continue  # a rule dead by itself is reported so, once
            reason = _dominates(other, rule)
            mutual = rule.action == DECLINE and _dominates(rule, other) is not None
            if reason is None or (mutual and index < other_index):  # the later one of the two is dead
                continue
            first = (" (it comes first, so it only puts its own name and code on those declines)"
                     if index < other_index and rule.action == DECLINE else "")
            yield Finding(WARNING, rule.line, names.key(rule),
                          f"dead: every request it {_verb(rule)}, {names.where(other)} declines "
                          f"too ({reason}){first}")
            break


def _dominates(rule: Rule, other: Rule) -> str | None:
    """Why `rule` (declining) fires whenever `other` would, or None: see the module docstring."""
    if type(rule) is not type(other) or not rule.scope.covers(other.scope):
        return None
    if isinstance(rule, Velocity):
        assert isinstance(other, Velocity)
        as_strict = all(limit is None or (mine is not None and mine <= limit)
                        for mine, limit in ((rule.max_count, other.max_count), (rule.max_amount, other.max_amount)))
        if rule.per == other.per and rule.window == other.window and as_strict:
            return f"per {rule.per} within {rule.window:g} s, limits as strict, its scope covering this one's"
    elif isinstance(rule, AmountLimit):
        assert isinstance(other, AmountLimit)
        if rule.max_amount <= other.max_amount and (other.require_pin or not rule.require_pin):
            return "a limit as low, its scope covering this one's"
    elif isinstance(rule, RateLimit):
        assert isinstance(other, RateLimit)
        if rule.per == other.per and rule.rate <= other.rate and rule.burst <= other.burst:
            return f"per {rule.per}, no higher rate nor larger burst, its scope covering this one's"
    elif isinstance(rule, Country):
        assert isinstance(other, Country)
        if _country_dominates(rule, other):
            return "it fires on every country this one does, its scope covering this one's"
    elif isinstance(rule, Travel):
        assert isinstance(other, Travel)
        if other.scope.covers(rule.scope) and rule.min_interval >= other.min_interval:
            return "the same scope, an interval as long"
    return None


def _country_dominates(rule: Country, other: Country) -> bool:
    """`rule` fires on every country (and missing field 19) that `other` fires on."""
    if other.scope.countries:
        return all(_fires(rule, country) for country in other.scope.countries if _fires(other, country))
    if not all(_fires(rule, country) for country in other.deny):
        return False
    if other.allow is None:
        return True
    # `other` fires on no field 19 and on every country outside its allow list: `rule` must
    # too, so it has an allow list and lets through only countries `other` allows.
    return rule.allow is not None and rule.allow - rule.deny <= other.allow


def _no_exception(rules: tuple[Rule, ...], names: _Names) -> Iterator[Finding]:
    countries = [rule for rule in rules if isinstance(rule, Country) and rule.action == DECLINE]
    for rule in countries:
        if rule.allow is None:
            continue
        for other in countries:
            if other is rule or not other.scope.covers(rule.scope):
                continue
            blocked = {country for country in rule.allow - rule.deny if _fires(other, country)}
            if blocked:
                yield Finding(ERROR, rule.line, names.key(rule, "allow"),
                              f"allows {_countries(blocked)}, which {names.where(other)} denies everywhere in "
                              f"this scope (rules make no exceptions to each other)")


# -- against a switch config ------------------------------------------------------------------

def _undefined_issuers(rules: tuple[Rule, ...], issuers: set[str], names: _Names) -> Iterator[Finding]:
    for rule in rules:
        for issuer in sorted(rule.scope.issuers - issuers):
            yield Finding(ERROR, rule.line, names.key(rule, "issuers"),
                          f"issuer {issuer!r} is not defined in the switch config")


def _unrouted(rules: tuple[Rule, ...], routing: RoutingTable, names: _Names) -> Iterator[Finding]:
    for rule in rules:
        for bins in rule.scope.bins:
            if not routing.reaches(bins.low, bins.high):
                yield Finding(WARNING, rule.line, names.key(rule, "bins"),
                              f"BIN {bins}: no route reaches it, so the rule never sees these cards")
