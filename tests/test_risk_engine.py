"""The risk engine's behaviour that `risk test` and `risk check` rely on: scopes, reservations
kept on approval and freed on decline, card testing's cool-down, travel, rate limits, flags,
reloads that keep state, and memory that empties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.core.risk.engine import RiskEngine
from switch.core.risk.facts import Facts
from switch.core.risk.rules import SET_DIMENSIONS, BinRange, RuleSet, Scope
from switch.risk import load_rules


def facts(pan: str = "4761730000000011", terminal: str | None = "T1", country: str | None = "840",
          amount: int = 100, channel: str = "present", pin: bool = False, merchant: str | None = "M1",
          connection: object = "c1", issuer: str | None = "bank_a") -> Facts:
    return Facts(pan=pan, pan_hash=f"h{pan}", issuer=issuer, terminal=terminal, acquirer="100001",
                 merchant=merchant, mcc="5411", country=country, channel=channel, amount=amount,
                 has_pin=pin, connection=connection)


def engine(tmp_path: Path, text: str) -> RiskEngine:
    path = tmp_path / "risk.toml"
    path.write_text(text)
    return RiskEngine(load_rules(path))


def send(risk: RiskEngine, request: Facts, now: float, answer: str = "00") -> tuple[str, str | None]:
    """As the switch: throttle, assess, settle; the answer and the rule that declined."""
    decline, _ = risk.throttle(request, now)
    if decline is not None:
        return decline.code, decline.rule
    found = risk.assess(request, now)
    code = found.decline.code if found.decline else answer
    risk.settle(found, code, now)
    return code, found.decline.rule if found.decline else None


# -- scopes ------------------------------------------------------------------------------------

def reference_matches(scope: Scope, request: Facts) -> bool:
    """The scope read literally: every dimension given must hold."""
    if scope.bins and not (request.pan and any(r.low <= request.pan[:len(r.low)] <= r.high for r in scope.bins)):
        return False
    if any(getattr(scope, d) and getattr(request, a) not in getattr(scope, d) for d, a in SET_DIMENSIONS.items()):
        return False
    return scope.channel is None or request.channel == scope.channel


VALUES = st.sampled_from(["a", "b"])
SCOPES = st.builds(
    Scope,
    bins=st.lists(st.sampled_from([BinRange("4", "4"), BinRange("476173", "476173"), BinRange("52", "55")]),
                  max_size=2).map(tuple),
    **{dimension: st.frozensets(VALUES, max_size=2) for dimension in SET_DIMENSIONS},
    channel=st.sampled_from([None, "present", "not_present"]),
)
REQUESTS = st.builds(
    Facts, pan=st.sampled_from([None, "", "4761730000000011", "5300000000000000", "6011000000000012"]),
    pan_hash=st.just("h"), issuer=VALUES | st.none(), terminal=VALUES | st.none(), acquirer=VALUES | st.none(),
    merchant=VALUES | st.none(), mcc=VALUES | st.none(), country=VALUES | st.none(),
    channel=st.sampled_from(["present", "not_present"]), amount=st.just(1), has_pin=st.booleans(),
)


@settings(max_examples=500)
@given(SCOPES, REQUESTS)
def test_scope_matches_as_written(scope: Scope, request: Facts) -> None:
    assert scope.matches(request) == reference_matches(scope, request)
    assert scope.unrestricted == (scope == Scope())


# -- velocity ----------------------------------------------------------------------------------

VELOCITY = '[[rules]]\nname = "v"\nkind = "velocity"\nper = "card"\nwindow_s = 100\nmax_count = 2\n'


def test_velocity_counts_approvals_only(tmp_path: Path) -> None:
    risk = engine(tmp_path, VELOCITY)
    card = facts()
    assert send(risk, card, 0) == ("00", None)
    assert send(risk, card, 1, answer="51") == ("51", None)  # declined by the issuer: freed
    assert send(risk, card, 2) == ("00", None)
    assert send(risk, card, 3) == ("65", "v")
    assert send(risk, facts(pan="4761730000000029"), 3) == ("00", None)  # per card
    assert send(risk, card, 100.5) == ("00", None)  # the first approval has left the window


def test_velocity_reserves_for_requests_in_flight(tmp_path: Path) -> None:
    risk = engine(tmp_path, VELOCITY)
    card = facts()
    first, second = risk.assess(card, 0), risk.assess(card, 0)  # both in flight, neither answered
    third = risk.assess(card, 0)
    assert (first.decline, second.decline) == (None, None) and third.decline is not None
    assert first.counted == ["v"] and third.counted == []
    risk.settle(first, "05", 0)  # the issuer declined one: its place is free again
    assert risk.assess(card, 0).decline is None


def test_velocity_amount_includes_this_request(tmp_path: Path) -> None:
    risk = engine(tmp_path, '[[rules]]\nname = "a"\nkind = "velocity"\nper = "card"\nwindow_s = 100\n'
                            'max_amount = 1000\n')
    assert send(risk, facts(amount=600), 0) == ("00", None)
    assert send(risk, facts(amount=401), 1) == ("61", "a")
    assert send(risk, facts(amount=400), 2) == ("00", None)


# -- card testing ------------------------------------------------------------------------------

CARD_TESTING = ('[[rules]]\nname = "ct"\nkind = "card_testing"\nper = "terminal"\ndistinct_cards = 3\n'
                'window_s = 60\ncooldown_s = 30\n')


def test_card_testing_cools_a_terminal_down_after_distinct_declined_cards(tmp_path: Path) -> None:
    risk = engine(tmp_path, CARD_TESTING)
    alerts = []
    for now, pan in enumerate(["4761730000000011", "4761730000000011", "4761730000000029", "4761730000000037"]):
        found = risk.assess(facts(pan=pan), now)
        assert found.decline is None
        alerts += risk.settle(found, "N7", now)
    assert [(a.rule, a.key, a.cards, a.cooldown) for a in alerts] == [("ct", "T1", 3, 30)]
    assert send(risk, facts(pan="5200000000000015"), 4) == ("59", "ct")
    assert send(risk, facts(pan="5200000000000015", terminal="T2"), 4) == ("00", None)
    assert send(risk, facts(pan="5200000000000015"), 33) == ("00", None)  # cool-down from 3 s to 33 s


def test_card_testing_ignores_other_codes_and_counts_unassessed_declines(tmp_path: Path) -> None:
    risk = engine(tmp_path, CARD_TESTING.replace("cooldown_s = 30", 'cooldown_s = 30\ncodes = ["15", "N7"]'))
    for now, pan in enumerate(["4761730000000011", "4761730000000029", "4761730000000037"]):
        send(risk, facts(pan=pan), now, answer="51")  # not a testing code
    assert send(risk, facts(), 3) == ("00", None)
    counted: list[str] = []
    for now, pan in enumerate(["1111", "2222", "3333"], 4):
        names, _ = risk.declined_unassessed(facts(pan=pan), "15", now)  # no route: never assessed
        counted += names
    assert counted == ["ct"] * 3 and send(risk, facts(), 7) == ("59", "ct")


# -- country, travel, amount, rate ---------------------------------------------------------------

def test_country_allow_and_deny(tmp_path: Path) -> None:
    risk = engine(tmp_path, '[[rules]]\nname = "c"\nkind = "country"\nallow = ["840", "408"]\ndeny = ["408"]\n')
    assert send(risk, facts(country="840"), 0) == ("00", None)
    assert send(risk, facts(country="408"), 0) == ("59", "c")
    assert send(risk, facts(country="826"), 0) == ("59", "c")
    assert send(risk, facts(country=None), 0) == ("59", "c")  # cannot show it is allowed


def test_travel_needs_two_card_present_approvals(tmp_path: Path) -> None:
    risk = engine(tmp_path, '[[rules]]\nname = "t"\nkind = "travel"\nmin_interval_s = 3600\n')
    assert send(risk, facts(country="840"), 0) == ("00", None)
    assert send(risk, facts(country="826", channel="not_present"), 10) == ("00", None)  # online: anywhere
    assert send(risk, facts(country="826"), 20) == ("59", "t")
    assert send(risk, facts(country="840"), 30) == ("00", None)
    assert send(risk, facts(country="826"), 3631) == ("00", None)


def test_amount_require_pin(tmp_path: Path) -> None:
    risk = engine(tmp_path, '[[rules]]\nname = "p"\nkind = "amount"\nmax_amount = 1000\nrequire_pin = true\n')
    assert send(risk, facts(amount=1000), 0) == ("00", None)
    assert send(risk, facts(amount=1001), 0) == ("70", "p")
    assert send(risk, facts(amount=1001, pin=True), 0) == ("00", None)


def test_rate_limit_per_connection_and_flags(tmp_path: Path) -> None:
    risk = engine(tmp_path, '[[rules]]\nname = "r"\nkind = "rate"\nper = "connection"\nper_second = 1\nburst = 2\n\n'
                            '[[rules]]\nname = "f"\nkind = "rate"\naction = "flag"\nper = "terminal"\n'
                            'per_second = 1\nburst = 1\n')
    assert risk.throttle(facts(), 0) == (None, ())
    decline, flags = risk.throttle(facts(), 0)
    assert decline is None and [hit.rule for hit in flags] == ["f"]
    decline, _ = risk.throttle(facts(), 0)
    assert decline is not None and (decline.rule, decline.code) == ("r", "91")
    assert risk.throttle(facts(connection="c2"), 0)[0] is None


def test_flags_go_on_and_are_summarised(tmp_path: Path) -> None:
    risk = engine(tmp_path, '[[rules]]\nname = "big"\nkind = "amount"\naction = "flag"\nmax_amount = 10\n\n'
                            '[[rules]]\nname = "no408"\nkind = "country"\ndeny = ["408"]\n')
    found = risk.assess(facts(amount=50, country="408"), 0)
    assert [hit.rule for hit in found.flags] == ["big"] and found.decline is not None
    assert "; ".join(hit.describe() for hit in found.hits()) == \
        "declined by no408: acquiring country 408 is denied; flagged by big: amount above 10"


# -- reloads and memory --------------------------------------------------------------------------

def test_a_reload_keeps_the_state_of_unchanged_rules(tmp_path: Path) -> None:
    risk = engine(tmp_path, VELOCITY)
    send(risk, facts(), 0)
    send(risk, facts(), 1)
    kept = RiskEngine(risk.rules, risk)
    assert send(kept, facts(), 2) == ("65", "v")
    changed = engine(tmp_path, VELOCITY.replace("max_count = 2", "max_count = 3"))
    assert send(RiskEngine(changed.rules, risk), facts(), 2) == ("00", None)


@pytest.mark.parametrize("rules", [VELOCITY, CARD_TESTING,
                                   '[[rules]]\nname = "t"\nkind = "travel"\nmin_interval_s = 50\n'])
def test_memory_empties_once_the_windows_pass(tmp_path: Path, rules: str) -> None:
    risk = engine(tmp_path, rules)
    for now in range(20):
        send(risk, facts(pan=f"47617300000{now:05d}", terminal=f"T{now % 3}"), now, answer="N7" if now % 2 else "00")
    assert risk.held() > 0
    send(risk, facts(pan="5200000000000015", terminal="T9"), 1000, answer="N7")  # memory is swept when touched
    send(risk, facts(pan="5200000000000015", terminal="T9"), 1000)
    assert risk.held() <= 1


def test_replay_rebuilds_counts(tmp_path: Path) -> None:
    risk = engine(tmp_path, VELOCITY)
    for now in (0, 1):
        risk.replay(facts(), "00", ["v"], now)
    assert send(risk, facts(), 2) == ("65", "v")
    assert RiskEngine(RuleSet()).held() == 0


def test_card_testing_counts_declines_of_the_rules_it_reached(tmp_path: Path) -> None:
    """A decline counts for the card-testing rules in scope up to the rule that declined (its
    own cool-down included), not for those after it: the assessment stopped there."""
    testing = 'kind = "card_testing"\nper = "terminal"\ndistinct_cards = 2\nwindow_s = 60\ncooldown_s = 30\ncodes = ["59"]\n'
    risk = engine(tmp_path, f'[[rules]]\nname = "before"\n{testing}\n'
                            '[[rules]]\nname = "no408"\nkind = "country"\ndeny = ["408"]\n\n'
                            f'[[rules]]\nname = "after"\n{testing}')
    counted = []
    for now, pan in enumerate(["4761730000000011", "4761730000000029"]):
        found = risk.assess(facts(pan=pan, country="408"), now)
        assert found.decline is not None and found.decline.rule == "no408"
        risk.settle(found, "59", now)
        counted.append(found.counted)
    assert counted == [["before"], ["before"]]
    found = risk.assess(facts(pan="4761730000000037"), 3)  # the terminal cools down
    assert found.decline is not None and found.decline.rule == "before"
    risk.settle(found, "59", 3)
    assert found.counted == ["before"]


def test_generated_code_names_bin_scopes_and_never_writes_them(tmp_path: Path) -> None:
    """A BIN scope may be a whole card number: the generated source, which tracebacks show,
    refers to it by name only."""
    risk = engine(tmp_path, '[[rules]]\nname = "one-card"\nkind = "velocity"\nper = "card"\n'
                            'bins = ["4761730000000060"]\nwindow_s = 60\nmax_count = 1\n')
    assert "4761730000000060" not in risk.source() and "476173" not in risk.source()
    assert send(risk, facts(pan="4761730000000060"), 0) == ("00", None)
    assert send(risk, facts(pan="4761730000000060"), 1) == ("65", "one-card")
    assert send(risk, facts(pan="4761730000000011"), 2) == ("00", None)


def test_a_rule_name_is_never_code_in_the_generated_functions(tmp_path: Path) -> None:
    """A name with line breaks (TOML escapes allow them) stays a comment: writing a rules file
    must not be a way to run code in the switch."""
    name = 'x\\nraise SystemExit(7)\\u2028raise SystemExit(8)\\u0085raise SystemExit(9)'
    risk = engine(tmp_path, f'[[rules]]\nname = "{name}"\nkind = "amount"\nmax_amount = 100\n')
    assert send(risk, facts(amount=50), 0) == ("00", None)
    assert send(risk, facts(amount=500), 1)[0] != "00"
    assert all(not line.lstrip().startswith("raise") for line in risk.source().splitlines())
