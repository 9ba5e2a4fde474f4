"""The in-memory duplicate window: what it remembers, and for how long."""

from __future__ import annotations

from switch.core.txn import Txn
from switch.core.window import DuplicateWindow


def txn(trace: int, created: float, stan: str = "000001", finished: bool = True, wall: float | None = None) -> Txn:
    """`created` is the monotonic time it was seen; `wall`, if given, what the wall clock said."""
    made = Txn(trace=trace, mti="0200", tid="T0000001", stan=stan, transmitted="1122334455", rrn=f"RRN{trace:09d}",
               amount=100, pan_hash="h", created=created if wall is None else wall, seen=created)
    if finished:
        made.finished = True
    return made


def test_a_retransmission_within_the_window_is_recognised():
    history = DuplicateWindow(window=60)
    first = txn(1, created=1000.0)
    history.add(first)
    assert history.previous("T0000001", "000001", "1122334455", now=1059.0) is first
    assert history.previous("T0000001", "000001", "1122334455", now=1061.0) is None


def test_entries_older_than_the_window_are_forgotten_so_memory_stays_bounded_by_time():
    history = DuplicateWindow(window=60)
    old = txn(1, created=1000.0)
    history.add(old)
    history.add(txn(2, created=1030.0, stan="000002"))
    history.add(txn(3, created=1070.0, stan="000003"))  # 70 s after the first
    assert len(history) == 2
    assert history.original("T0000001", "0200", "000001", "1122334455") is None
    assert history.by_rrn(old.rrn, "T0000001", 100) is None
    assert history.original("T0000001", "0200", "000002", "1122334455") is not None


def test_capacity_bounds_memory_under_a_burst():
    history = DuplicateWindow(window=600, capacity=3)
    for trace in range(1, 6):
        history.add(txn(trace, created=1000.0 + trace, stan=f"{trace:06d}"))
    assert len(history) == 3
    assert history.original("T0000001", "0200", "000002", "1122334455") is None
    assert history.original("T0000001", "0200", "000005", "1122334455") is not None


def test_a_key_seen_again_after_the_window_is_kept_as_the_newest():
    history = DuplicateWindow(window=60)
    history.add(txn(1, created=1000.0))
    history.add(txn(2, created=1030.0, stan="000002"))
    again = txn(3, created=1080.0)  # same terminal, STAN and time as trace 1, outside the window
    history.add(again)
    assert history.previous("T0000001", "000001", "1122334455", now=1081.0) is again


def test_a_transaction_still_in_flight_is_kept_past_the_window_for_its_reversal():
    history = DuplicateWindow(window=60)
    slow = txn(1, created=1000.0, finished=False)
    history.add(slow)
    history.add(txn(2, created=1070.0, stan="000002"))
    assert history.original("T0000001", "0200", "000001", "1122334455") is slow
    slow.finished = True
    history.add(txn(3, created=1071.0, stan="000003"))  # the same eighth of the window: nothing leaves
    history.add(txn(4, created=1080.0, stan="000004"))  # the next eighth: finished, it is forgotten
    assert history.original("T0000001", "0200", "000001", "1122334455") is None
    assert len(history) == 3


def test_the_window_leaves_an_eighth_at_a_time_and_the_newest_entry_for_a_key_wins():
    history = DuplicateWindow(window=80)  # buckets of 10 s
    for second in range(0, 200):
        history.add(txn(second + 1, created=1000.0 + second, stan=f"{second % 50:06d}"))
    # What is held: the last 80 s, plus at most the part of the oldest bucket not yet left.
    assert 80 <= len(history) <= 90
    newest = history.previous("T0000001", "000049", "1122334455", now=1199.5)
    assert newest is not None and newest.created == 1199.0  # STAN 49 came back every 50 s
    assert history.original("T0000001", "0200", "000000", "1122334455").created == 1150.0
    assert history.previous("T0000001", "000010", "1122334455", now=1199.5).created == 1160.0


def test_a_newer_finished_namesake_hides_an_older_one_still_in_flight_once_both_have_left():
    history = DuplicateWindow(window=0)  # shorter than a request can take: the in-flight one lingers
    older = txn(1, created=1000.0, finished=False)
    history.add(older)
    newer = txn(2, created=1000.5)  # the same terminal, STAN and time; finished
    history.add(newer)
    history.add(txn(3, created=1001.6, stan="000003"))
    history.add(txn(4, created=1002.7, stan="000004"))
    # Memory no longer has the newest, so it answers nothing and the journal (newest first)
    # is asked, rather than memory answering with the older one.
    assert history.original("T0000001", "0200", "000001", "1122334455") is None
    assert history.by_rrn(newer.rrn, "T0000001", 100) is None
    assert len(history) >= 1  # the older one is still held while in flight


def test_a_wall_clock_step_does_not_empty_the_window():
    history = DuplicateWindow(window=60)
    first = txn(1, created=1000.0, wall=1_700_000_000.0)
    history.add(first)
    # NTP steps the wall clock an hour ahead; 10 s pass on the monotonic clock
    history.add(txn(2, created=1010.0, stan="000002", wall=1_700_003_610.0))
    history.add(txn(3, created=1020.0, stan="000003", wall=1_700_003_620.0))
    assert history.previous("T0000001", "000001", "1122334455", now=1021.0) is first
    assert len(history) == 3
