"""A terminal's advice (0120, 0220, or an 0420 without a known original): something that already
happened, so it is not declined. It is answered 00 once it is durably queued for the card's
issuer (not a fallback: the issuer of record must learn of it), which SAF delivers however long
the issuer is away. Only a card without a route gets 15 (routing, before this): an advice the
switch could never deliver must not be acknowledged."""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, Enqueue
from switch.core.messages import acquirer_advice
from switch.core.states import State


def queue_advice(ctx: Context) -> Generator[Effect, object, Answer | None]:
    assert ctx.route is not None
    issuer = ctx.route.issuer
    ctx.txn.issuer = issuer
    yield Enqueue(issuer, ctx.txn.trace, "acquirer_advice", acquirer_advice(ctx.request, ctx.acquirer_id))
    return Answer(RC.APPROVED, State.APPROVED, ctx.reason)
