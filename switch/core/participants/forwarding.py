"""Forwarding to the issuer: what the issuer gets, the exchange on its link, and what its answer
(or its silence) means.

A link that already holds its issuer's `max_in_flight` requests does not take the request
(LinkFailure.SATURATED): that is handled like an issuer that does not answer (stand-in, else
91); the route's fallback is for a link that is down, not a busy one.

Exactly once: the 0420 that undoes the request is built before it leaves and journaled with it
(the Exchange effect), so whatever happens next is covered. A request that may have reached the
issuer without a usable answer (timed out, its link dropped while it was in flight, an answer
without a valid field 39, an answer whose MAC fails) is reversed through SAF at once; a late
approval then finds its reversal already on its way, and stand-in may approve on top of it.
"""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, Enqueue, Exchange, LinkFailure
from switch.core.messages import reversal_advice
from switch.core.states import State
from switch.wire.macs import MAC_FIELDS
from switch.wire.message import Message


def prepare_outgoing(ctx: Context) -> None:
    """The request as its issuer gets it: a repeat (0201) the issuer never saw the first of is a
    first transmission; field 32 from the listener when the terminal left it out; without the
    terminal's MAC, which covers the terminal's hop only (the link MACs what it sends where its
    issuer asks for it)."""
    assert ctx.link is not None  # chosen by routing
    outgoing = ctx.request.copy()
    outgoing.mti = ctx.txn.mti
    for field in MAC_FIELDS:
        outgoing.fields.pop(field, None)
    if "32" not in outgoing.fields and ctx.acquirer_id:
        outgoing.fields["32"] = ctx.acquirer_id
    ctx.outgoing = outgoing
    ctx.txn.issuer = ctx.link.name


# Sent, and no usable answer: the issuer may have approved it.
MAY_HAVE_REACHED = frozenset({LinkFailure.TIMED_OUT, LinkFailure.DROPPED, LinkFailure.MAC_FAILED})


def forward_to_issuer(ctx: Context) -> Generator[Effect, object, Answer | None]:
    link, outgoing = ctx.link, ctx.outgoing
    assert link is not None and outgoing is not None
    sent = link.matcher.outgoing(outgoing)  # with the link's own STAN, on a copy
    ctx.reversal = reversal_advice(sent, reason=RC.LATE_RESPONSE)
    result = yield Exchange(link, sent, ctx.reversal)
    if isinstance(result, Message):
        ctx.issuer_response = result
        return None
    assert isinstance(result, LinkFailure)
    if result is LinkFailure.KEY_IN_USE:
        return Answer(RC.DUPLICATE, State.REJECTED, result.value)
    if result in MAY_HAVE_REACHED:
        yield Enqueue(link.name, ctx.txn.trace, "timeout_reversal", ctx.reversal)
    ctx.failure = result
    return None


def answer_from_issuer(ctx: Context) -> Generator[Effect, object, Answer] | Answer:
    """The issuer's answer, passed on. One without a valid field 39 (two letters or digits) is
    a failure (96), and reversed: it may be an approval the switch cannot read."""
    response = ctx.issuer_response
    assert response is not None
    code = response.fields.get("39")
    if code is None or len(code) != 2 or not code.isascii() or not code.isalnum():
        return _reverse_unreadable(ctx)
    return Answer(code, State.APPROVED if code == RC.APPROVED else State.DECLINED, base=response)


def _reverse_unreadable(ctx: Context) -> Generator[Effect, object, Answer]:
    assert ctx.link is not None and ctx.reversal is not None
    yield Enqueue(ctx.link.name, ctx.txn.trace, "timeout_reversal", ctx.reversal)
    return Answer(RC.SYSTEM_ERROR, State.FAILED, "issuer response without a valid field 39: reversed")
