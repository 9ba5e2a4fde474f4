"""Forwarding to the issuer: what the issuer gets, the exchange on its link, and what its answer
(or its silence) means.

A link that already holds its issuer's `max_in_flight` requests does not take the request
(LinkFailure.SATURATED): that is handled like an issuer that does not answer (stand-in, else 91); the route's fallback is for a link that
is down, not a busy one. A timed-out request may still be approved late: the reversal that a late
approval needs is built now, while the forwarded copy exists.
"""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, AwaitLateAnswer, Context, Effect, Exchange, LinkFailure
from switch.core.messages import reversal_advice
from switch.core.states import State
from switch.wire.message import Message


def prepare_outgoing(ctx: Context) -> None:
    """The request as its issuer gets it: a repeat (0201) the issuer never saw the first of is a
    first transmission; field 32 from the listener when the terminal left it out."""
    outgoing = ctx.request.copy()
    outgoing.mti = ctx.txn.mti
    if "32" not in outgoing.fields and ctx.acquirer_id:
        outgoing.fields["32"] = ctx.acquirer_id
    ctx.outgoing = outgoing
    ctx.txn.issuer = ctx.link.name


def forward_to_issuer(ctx: Context) -> Generator[Effect, object, Answer | None]:
    link, outgoing = ctx.link, ctx.outgoing
    assert outgoing is not None
    result = yield Exchange(link, outgoing)
    if isinstance(result, Message):
        ctx.issuer_response = result
        return None
    assert isinstance(result, LinkFailure)
    if result is LinkFailure.KEY_IN_USE:
        return Answer(RC.DUPLICATE, State.REJECTED, result.value)
    if result is LinkFailure.TIMED_OUT:
        forwarded = ctx.txn.forwarded or outgoing
        yield AwaitLateAnswer(link, ctx.txn, reversal_advice(forwarded, reason=RC.LATE_RESPONSE))
    ctx.failure = result
    return None


def answer_from_issuer(ctx: Context) -> Answer:
    """The issuer's answer, passed on; one without a valid field 39 is a failure (96)."""
    response = ctx.issuer_response
    assert response is not None
    code = response.fields.get("39")
    if not code or len(code) != 2:
        return Answer(RC.SYSTEM_ERROR, State.FAILED, "issuer response without a valid field 39")
    return Answer(code, State.APPROVED if code == RC.APPROVED else State.DECLINED, base=response)
