"""A transaction's states and the moves allowed between them, in one table (h11's `_state.py`
is the model): the pipeline and the journal speak only these names, and a move the table does
not allow is a bug that `Txn.move_to` raises at once instead of journaling.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    PENDING = "pending"  # taken by the switch; outcome not known yet
    APPROVED = "approved"  # issuer approved (or the switch accepted a reversal, advice, 0800)
    DECLINED = "declined"  # issuer declined, or a check on its behalf (PIN, CVV, stand-in limit)
    REJECTED = "rejected"  # refused by the switch before any issuer saw it (format, route, duplicate)
    FAILED = "failed"  # the switch or the issuer could not decide (91 without timeout, 96)
    TIMED_OUT = "timed_out"  # sent, no answer in time: the issuer may have approved it
    STOOD_IN = "stood_in"  # approved by the switch on the issuer's behalf; advised via SAF
    DUPLICATE = "duplicate"  # a retransmission, answered as the first time
    REVERSED = "reversed"
    PARTIALLY_REVERSED = "partially_reversed"
    # The switch stopped (crashed) while the request was in flight and the terminal got no answer:
    # what may have reached the issuer was reversed at the next start (switch.recovery).
    INTERRUPTED = "interrupted"


_DECIDED = frozenset({State.APPROVED, State.DECLINED, State.REJECTED, State.FAILED, State.TIMED_OUT,
                      State.STOOD_IN, State.DUPLICATE, State.INTERRUPTED})
_REVERSED = frozenset({State.REVERSED, State.PARTIALLY_REVERSED})

# state -> the states it may move to. A terminal's reversal undoes an approval the terminal saw;
# what timed out or was interrupted the switch reversed itself, at once.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: _DECIDED,
    State.APPROVED: _REVERSED,
    State.STOOD_IN: _REVERSED,
    State.PARTIALLY_REVERSED: _REVERSED,
    State.TIMED_OUT: frozenset(),
    State.INTERRUPTED: frozenset(),
    State.DECLINED: frozenset(),
    State.REJECTED: frozenset(),
    State.FAILED: frozenset(),
    State.DUPLICATE: frozenset(),
    State.REVERSED: frozenset(),
}

FINAL_STATES = frozenset(State) - {State.PENDING}
# An original in one of these is not forwarded when a terminal reverses it: the issuer never
# approved it, or the switch already reversed it (what timed out or was interrupted by a crash is
# reversed at once, what failed after reaching the issuer too).
NOT_TO_REVERSE = frozenset({State.DECLINED, State.REJECTED, State.FAILED, State.DUPLICATE, State.REVERSED,
                            State.TIMED_OUT, State.INTERRUPTED})
# Rows that have an original's keys without being one: a retransmission, or a request refused.
NOT_AN_ORIGINAL = frozenset({State.DUPLICATE, State.REJECTED})


class IllegalTransition(Exception):
    """A move the table does not allow: a bug in the pipeline, never a peer's doing."""

    def __init__(self, trace: int, current: State, new: State):
        super().__init__(f"transaction {trace}: {current} -> {new} is not an allowed transition")
