"""Retransmissions: the same terminal, STAN and transmission time within the duplicate window is
answered as the first time, never forwarded again; the same keys with other content get 94.

Every request that is not a retransmission enters the window here, so a later one finds it. On a
shared journal (several instances) the window is only a cache: a request it does not know is
claimed in the journal (switch.records `claim`), which knows every instance's requests.
"""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Claim, Context, Effect, WaitFor
from switch.core.messages import NETWORK_MTI
from switch.core.states import State
from switch.core.txn import Txn
from switch.wire.message import Message, response_mti


def recognise_retransmission(ctx: Context) -> Generator[Effect, object, Answer | None] | None:
    txn = ctx.txn
    if ctx.request.mti == NETWORK_MTI:
        return None
    window = ctx.switch.window
    prior = window.previous(txn.tid, txn.stan, txn.transmitted, txn.seen)
    if prior is None:
        if ctx.switch.shared_journal:
            return _claim(ctx)
        window.add(txn)
        return None
    ctx.prior, ctx.original_trace = prior, prior.trace
    return _answer_as_before(ctx, prior)


def _claim(ctx: Context) -> Generator[Effect, object, Answer | None]:
    """Other instances share the journal: it, not this instance's window, says whether the
    request is the first with its keys."""
    prior = yield Claim(ctx.txn)
    if not isinstance(prior, Txn):
        ctx.switch.window.add(ctx.txn)  # the first: the window keeps it for what follows here
        return None
    ctx.prior, ctx.original_trace = prior, prior.trace
    return (yield from _answer_as_before(ctx, prior))


def _answer_as_before(ctx: Context, prior: Txn) -> Generator[Effect, object, Answer | None]:
    txn = ctx.txn
    if (prior.mti, prior.amount, prior.pan_hash) != (txn.mti, txn.amount, txn.pan_hash):
        return Answer(RC.DUPLICATE, State.REJECTED, "same terminal, STAN and time, different content")
    yield WaitFor(prior)
    txn.issuer = prior.issuer
    if prior.response is None or prior.rc is None:
        return Answer(RC.ISSUER_UNAVAILABLE, State.DUPLICATE, "retransmission while the original is in flight")
    first = Message(response_mti(ctx.request.mti), prior.response)  # the first answer, as kept
    return Answer(prior.rc, State.DUPLICATE, "retransmission answered from the journal", base=first)
