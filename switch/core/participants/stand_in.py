"""Stand-in: the issuer is down, too slow or its link saturated. Within the issuer's limits the
switch approves on its behalf and advises it (0120/0220 via SAF); else 91 (or the limit's decline).
A PIN cannot be judged without the issuer: never stood in."""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, Enqueue, LinkFailure, ReserveStandIn
from switch.core.messages import OriginalData, stand_in_advice
from switch.core.standin import Decision
from switch.core.states import State


def stand_in_without_issuer(ctx: Context) -> Generator[Effect, object, Answer | None] | None:
    failure = ctx.failure
    if failure is None:
        return None
    return _stand_in(ctx, failure)


def _stand_in(ctx: Context, failure: LinkFailure) -> Generator[Effect, object, Answer | None]:
    why = failure.value
    assert ctx.link is not None  # the link that failed
    limits = ctx.link.config.stand_in
    txn, request = ctx.txn, ctx.request
    if limits is None or "52" in request.fields:
        state = State.TIMED_OUT if failure is LinkFailure.TIMED_OUT else State.FAILED
        return Answer(RC.ISSUER_UNAVAILABLE, state, why)
    issuer = ctx.link.name
    shared = ctx.switch.shared_journal  # then the journal counts the card's daily usage, for every instance
    decision = ctx.switch.stand_in.decide(limits, issuer, txn.pan_hash or "", request["3"],
                                          request.fields.get("18"), txn.amount, counted_here=not shared)
    if decision.approved and shared:
        refused = yield ReserveStandIn(issuer, txn.pan_hash or "", txn.amount, limits)
        decision = refused if isinstance(refused, Decision) else decision
    if not decision.approved:
        return Answer(decision.code, State.DECLINED, f"{why}; {decision.reason}")
    assert decision.approval is not None
    forwarded = txn.forwarded or ctx.outgoing
    assert forwarded is not None
    # The advice gets the link's next STAN now, and keeps it in every repeat: it is the approval's
    # name at the issuer (field 90 of its reversal; what `cardswitch recon` matches on).
    advice = ctx.link.matcher.outgoing(stand_in_advice(forwarded, decision.approval))
    yield Enqueue(issuer, txn.trace, "stand_in_advice", advice)
    txn.stood_in = True
    # The issuer learns of this approval from the advice: a reversal names the advice, not the
    # request that may have reached the issuer too (and has a reversal of its own).
    txn.sent_as = OriginalData.text_of(advice)
    return Answer(RC.APPROVED, State.STOOD_IN, f"{why}; {decision.reason}", extra={"38": decision.approval})
