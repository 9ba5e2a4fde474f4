"""The issuer link's, terminal's and replay's matching, as values in and values out."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from switch.core.matcher import KeyInUse, Matcher, next_stan
from switch.wire.message import Message


def request(stan: str = "000123", tid: str = "T0000001", mti: str = "0200") -> Message:
    return Message(mti, {"11": stan, "41": tid, "4": "000000001000"})


def answer_to(sent: Message, code: str = "00") -> Message:
    return Message(sent.mti[:2] + "10", {"11": sent["11"], "41": sent["41"], "39": code})


def test_the_link_gives_its_own_stan_on_a_copy_and_the_answer_finds_its_waiter():
    matcher: Matcher[str] = Matcher(timeout=5.0)
    original = request()
    sent = matcher.outgoing(original)
    assert (original["11"], sent["11"]) == ("000123", "000001")
    matcher.park(sent, "waiter", now=0.0)
    assert matcher.match(answer_to(original)) == (("0210", "000123", "T0000001"), None)  # not what was sent
    assert matcher.match(answer_to(sent))[1] == "waiter"
    assert len(matcher) == 0


def test_stans_run_from_000001_to_999999_and_round_again_never_000000():
    assert [next_stan(n) for n in (0, 1, 999_998, 999_999)] == [1, 2, 999_999, 1]
    matcher: Matcher[str] = Matcher(last_stan=999_998)
    assert [matcher.outgoing(request())["11"] for _ in range(3)] == ["999999", "000001", "000002"]


def test_a_key_in_flight_is_refused_when_the_link_keeps_the_terminals_stans():
    matcher: Matcher[str] = Matcher(assign_stan=False)
    matcher.park(request(), "first", now=0.0)
    with pytest.raises(KeyInUse):
        matcher.park(request(), "second", now=0.0)


def test_deadlines_expire_oldest_first_and_answered_requests_never_expire():
    matcher: Matcher[str] = Matcher(timeout=1.0)
    sent = [matcher.outgoing(request()) for _ in range(3)]
    for number, message in enumerate(sent):
        matcher.park(message, f"w{number}", now=float(number))
    matcher.match(answer_to(sent[0]))
    assert matcher.next_deadline() == 2.0
    assert list(matcher.expired(2.5)) == ["w1"]
    assert matcher.next_deadline() == 3.0
    assert matcher.drain() == ["w2"]
    assert matcher.next_deadline() is None


def test_repeats_are_answered_oldest_first_and_a_waiter_that_gives_up_leaves():
    matcher: Matcher[str] = Matcher(("11", "41"), timeout=None, assign_stan=False, repeats=True)
    key = matcher.park(request(), "first")
    matcher.park(request(), "second")
    matcher.park(request(), "third")
    matcher.forget(key, "second")
    assert [matcher.match(answer_to(request()))[1] for _ in range(3)] == ["first", "third", None]


@given(st.lists(st.sampled_from(["park", "answer", "forget"]), max_size=60))
def test_every_waiter_leaves_exactly_once(operations):
    """However parks, answers and give-ups interleave, a waiter is handed out at most once and
    the count of what is in flight stays true."""
    matcher: Matcher[int] = Matcher(("11",), timeout=None, assign_stan=False, repeats=True)
    parked: list[tuple[tuple[str, ...], int]] = []
    out: list[int] = []
    for number, operation in enumerate(operations):
        if operation == "park":
            parked.append((matcher.park(request(), number), number))
        elif operation == "answer":
            _, waiter = matcher.match(answer_to(request()))
            if waiter is not None:
                out.append(waiter)
        elif parked:
            key, waiter = parked.pop(0)
            if waiter not in out:
                matcher.forget(key, waiter)
                out.append(waiter)
        assert len(matcher) == len({w for _, w in parked} - set(out))
    assert len(out) == len(set(out))


@pytest.mark.parametrize("request_mti, answer_mti", [("0400", "0430"), ("0420", "0410"), ("0400", "0410"),
                                                     ("0420", "0430")])
def test_a_reversal_is_answered_by_either_reversal_response(request_mti, answer_mti):
    """A 1993 issuer's 1430 reads as 0410 or 0430 by whether it echoed field 25: either ends the
    wait of the reversal it answers, request or advice."""
    matcher: Matcher[str] = Matcher(timeout=5.0)
    sent = matcher.outgoing(request(mti=request_mti))
    matcher.park(sent, "reversal", now=0.0)
    assert matcher.match(Message(answer_mti, {"11": sent["11"], "41": sent["41"], "39": "00"}))[1] == "reversal"
