"""Load shedding: beyond `max_in_flight`, a new authorisation or purchase is answered 91 at once.

Not checked, not HSM-processed, not forwarded, and not entered in the duplicate window: the
terminal's retry (same STAN and time) is a first transmission to the switch, processed normally
once there is room. Reversals and advices record money already moved (shedding them only means
more work later) and network management keeps terminals signed on: never shed. A retransmission
of a request the switch took is answered as the first time (a 91 would contradict an approval).
"""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, Shed
from switch.core.states import State

SHEDDABLE_MTIS = frozenset({"0100", "0101", "0200", "0201"})


def shed_when_overloaded(ctx: Context) -> Generator[Effect, object, Answer | None] | None:
    if not ctx.switch.over_capacity or ctx.request.mti not in SHEDDABLE_MTIS:
        return None
    txn = ctx.txn
    if ctx.switch.window.previous(txn.tid, txn.stan, txn.transmitted, txn.seen) is not None:
        return None
    return _shed()


def _shed() -> Generator[Effect, object, Answer | None]:
    yield Shed()
    return Answer(RC.ISSUER_UNAVAILABLE, State.REJECTED, "switch overloaded")
