"""One request's life in the switch, as the pipeline and the duplicate window see it.

A plain record: the waiting for a transaction to finish (a retransmission or reversal that
arrives while its original is in flight) is the running service's, not this object's, so the
window's hundreds of thousands of entries carry no synchronisation object each.
"""

from __future__ import annotations

import attrs

from switch.core.states import TRANSITIONS, IllegalTransition, State
from switch.wire.message import Message


@attrs.define(eq=False)
class Txn:
    """`response` is what the terminal got, as a retransmission needs it (memory only)."""

    trace: int
    mti: str
    tid: str
    stan: str
    transmitted: str
    rrn: str | None
    amount: int
    pan_hash: str | None
    created: float  # wall clock (time.time()): what the journal and the operator see
    # The switch's clock (trio's, seconds) when it took the request: the duplicate window ages by
    # it, so a wall-clock step (NTP) cannot empty the window and let a retransmission through twice.
    seen: float
    issuer: str | None = None
    state: State = State.PENDING
    rc: str | None = None
    approval: str | None = None
    # As sent to the issuer; held only while the request runs, for the stand-in or late-reversal
    # advice it may need (advices are built without its card data).
    forwarded: Message | None = None
    # Field 90 (its text) naming what the issuer got: for its reversal.
    sent_as: str | None = None
    # What a retransmission needs of the response (messages.retained_response). Like every other
    # value a finished transaction keeps, a plain one: the collector tracks only the Txn itself.
    response: dict[str, str] | None = None
    reversed_amount: int = 0
    stood_in: bool = False  # approved by the switch for the issuer, whatever its state is now
    issuer_ms: float | None = None  # waiting for the issuer's answer (logged: the switch's own time is the rest)
    finished: bool = False  # the outcome is known and journaled
    remote: bool = False  # read from a shared journal: another instance may be running it

    def move_to(self, state: State) -> None:
        """Change state along the table in switch.core.states, or raise IllegalTransition."""
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.trace, self.state, state)
        self.state = state
