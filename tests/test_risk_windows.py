"""The risk engine's memory (switch/core/risk/windows.py) against brute-force recounts: for any
sequence of events and time steps, windows count what lies within them, buckets never grant
more than the burst plus the refill, and keys are forgotten once their window has passed."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from switch.core.risk.windows import Cooldowns, DistinctWindow, LastSeen, SlidingTotals, TokenBuckets

KEYS = st.sampled_from(["a", "b", "c", "d"])
STEPS = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 3.0, 10.0])  # time between operations; 0 often
SPAN = st.sampled_from([1.0, 2.5, 5.0])


@settings(max_examples=300)
@given(SPAN, st.lists(st.tuples(st.sampled_from(["add", "add", "retract", "totals"]), KEYS, STEPS,
                                st.integers(0, 1000), st.integers(0, 50)), max_size=60))
def test_sliding_totals_equal_a_recount_of_live_events_in_the_window(span: float, operations: list) -> None:
    window: SlidingTotals = SlidingTotals(span)
    events: list[tuple[str, float, int, object]] = []  # key, at, amount, the window's event
    retracted: set[int] = set()
    now = 0.0
    for operation, key, step, amount, pick in operations:
        now += step
        if operation == "add":
            events.append((key, now, amount, window.add(key, now, amount)))
        elif operation == "retract" and events:
            index = pick % len(events)
            window.retract(events[index][3])  # type: ignore[arg-type]
            retracted.add(index)
        live = [(at, amt) for index, (k, at, amt, _) in enumerate(events)
                if k == key and at > now - span and index not in retracted]
        assert window.totals(key, now) == (len(live), sum(amount for _, amount in live))


@settings(max_examples=200)
@given(SPAN, st.lists(st.tuples(KEYS, STEPS), max_size=40), KEYS)
def test_sliding_totals_forget_keys_once_their_window_has_passed(span: float, adds: list, last: str) -> None:
    window: SlidingTotals = SlidingTotals(span)
    now = 0.0
    newest: dict[str, float] = {}
    for key, step in adds:
        now += step
        window.add(key, now, 1)
        newest[key] = now
        assert len(window) >= sum(at > now - span for at in newest.values())  # until forget
        window.forget(now)
        assert len(window) == sum(at > now - span for at in newest.values())
    window.add(last, now + span, 1)  # the only event within the window
    window.forget(now + span)
    assert len(window) == 1


@settings(max_examples=300)
@given(st.sampled_from([0.5, 1.0, 4.0]), st.integers(1, 5),
       st.lists(st.tuples(KEYS, st.sampled_from([0.0, 0.0, 0.0, 0.1, 0.3, 1.0, 2.0, 20.0])), max_size=80))
def test_token_buckets_never_grant_more_than_burst_plus_refill(rate: float, burst: int, takes: list) -> None:
    buckets: TokenBuckets = TokenBuckets(rate, burst)
    now = 0.0
    granted: dict[str, list[float]] = {}
    for key, step in takes:
        now += step
        if buckets.take(key, now):
            granted.setdefault(key, []).append(now)
    for times in granted.values():
        for first in range(len(times)):
            for last in range(first, len(times)):
                assert last - first + 1 <= burst + rate * (times[last] - times[first]) + 1e-9
    if takes:
        later = now + burst / rate + 0.01  # every bucket taken from is full again by then
        buckets.take("fresh", later)
        buckets.forget(later)  # the sweep
        assert len(buckets) == 1


def test_token_buckets_grant_the_burst_at_once_then_the_rate() -> None:
    buckets: TokenBuckets = TokenBuckets(2.0, 3)
    assert [buckets.take("k", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("k", 0.5) and not buckets.take("k", 0.5)


@settings(max_examples=200)
@given(SPAN, st.lists(st.tuples(st.sampled_from(["add", "add", "add", "clear"]), KEYS, STEPS,
                                st.sampled_from(["card1", "card2", "card3"])), max_size=60))
def test_distinct_window_counts_distinct_values_since_the_last_clear(span: float, operations: list) -> None:
    window: DistinctWindow = DistinctWindow(span)
    seen: dict[str, list[tuple[float, str]]] = {}
    now = 0.0
    for operation, key, step, value in operations:
        now += step
        if operation == "clear":
            window.clear(key)
            seen.pop(key, None)
            continue
        seen.setdefault(key, []).append((now, value))
        assert window.add(key, now, value) == len({v for at, v in seen[key] if at > now - span})
        assert len(window) <= sum(any(at > now - span for at, _ in values) for values in seen.values())


@settings(max_examples=200)
@given(st.sampled_from([1.0, 5.0]), st.lists(st.tuples(st.sampled_from(["start", "active"]), KEYS, STEPS),
                                             max_size=50))
def test_cooldowns_last_their_length_from_the_latest_start(length: float, operations: list) -> None:
    cooldowns: Cooldowns = Cooldowns(length)
    started: dict[str, float] = {}
    now = 0.0
    for operation, key, step in operations:
        now += step
        if operation == "start":
            assert cooldowns.start(key, now) == now + length
            started[key] = now
        else:
            until = started[key] + length if key in started and started[key] + length > now else None
            assert cooldowns.active(key, now) == until
            assert len(cooldowns) == sum(at + length > now for at in started.values())


@settings(max_examples=200)
@given(SPAN, st.lists(st.tuples(st.sampled_from(["note", "forget"]), KEYS, STEPS, st.sampled_from(["840", "826"])),
                      max_size=50))
def test_last_seen_keeps_the_last_note_until_its_span_has_passed(span: float, operations: list) -> None:
    last: LastSeen = LastSeen(span)
    noted: dict[str, tuple[str, float]] = {}
    now = 0.0
    for operation, key, step, value in operations:
        now += step
        if operation == "note":
            last.note(key, value, now)
            noted[key] = (value, now)
        else:
            last.forget(now)
            noted = {k: seen for k, seen in noted.items() if now - seen[1] < span}
        assert last.last == noted


def test_a_count_replayed_at_its_own_time_leaves_the_window_on_time():
    """Another instance's counts arrive up to seconds late, replayed at the times they happened:
    behind newer events, they must still expire when their own window ends."""
    window: SlidingTotals = SlidingTotals(60.0)
    window.add("card A", 100.0, 500)
    window.add("card B", 45.0, 500)  # happened at 45, learned at 100
    window.add("card B", 106.0, 500)
    assert window.totals("card B", 106.0) == (1, 500)  # the replayed one left at 105
    window.add("card A", 120.0, 100)
    assert window.totals("card A", 120.0) == (2, 600)


@settings(max_examples=300)
@given(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]), st.integers(1, 5),
       st.lists(st.tuples(KEYS, st.sampled_from([0.0, 0.0, 0.125, 0.25, 0.5, 1.0, 3.0])), max_size=80))
def test_token_buckets_decide_as_counted_tokens(rate: float, burst: int, takes: list) -> None:
    """The buckets keep one time per key (when it is full again); a reference counts tokens,
    exactly (fractions), refilled at `rate` up to `burst`. Rates and steps are powers of two, so
    the floats are exact too and every decision must agree, at the edges included."""
    buckets: TokenBuckets = TokenBuckets(rate, burst)
    tokens: dict[str, tuple[Fraction, Fraction]] = {}  # key -> (tokens, when)
    now = Fraction(0)
    for key, step in takes:
        now += Fraction(step)
        held, when = tokens.get(key, (Fraction(burst), now))
        held = min(Fraction(burst), held + (now - when) * Fraction(rate))
        granted = held >= 1
        tokens[key] = (held - 1 if granted else held, now)
        assert buckets.take(key, float(now)) == granted
