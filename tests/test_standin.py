"""Stand-in's daily limits follow the caller's day: crossing UTC midnight resets them."""

from __future__ import annotations

import datetime

from switch.core.standin import StandIn, StandInLimits

LIMITS = StandInLimits(max_amount=5000, daily_count=1, daily_amount=5000)


def test_a_card_at_its_daily_count_is_stood_in_for_again_the_next_day():
    day = [datetime.date(2026, 12, 1)]
    stand_in = StandIn(lambda: day[0])
    assert stand_in.decide(LIMITS, "bank", "card", "000000", None, 100).approved
    assert stand_in.decide(LIMITS, "bank", "card", "000000", None, 100).code == "65"
    day[0] += datetime.timedelta(days=1)
    assert stand_in.decide(LIMITS, "bank", "card", "000000", None, 100).approved


def test_limits_are_per_issuer_and_card():
    stand_in = StandIn(lambda: datetime.date(2026, 12, 1))
    assert stand_in.decide(LIMITS, "bank", "card", "000000", None, 100).approved
    assert stand_in.decide(LIMITS, "bank", "other card", "000000", None, 100).approved
    assert stand_in.decide(LIMITS, "other bank", "card", "000000", None, 100).approved
    assert stand_in.decide(LIMITS, "bank", "card", "000000", None, 100).code == "65"
