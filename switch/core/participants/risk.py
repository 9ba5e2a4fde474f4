"""Risk rules (switch.core.risk): rate limits first, the other rules once the card is routed.

`limit_rate` runs among the common steps, beside load shedding and for the same requests
(authorisations and purchases; a retransmission of one the switch took is answered as the first
time): a terminal or connection beyond its token bucket is answered 91 at once, before any
other work. `assess_risk` runs after routing (rules may be scoped to the issuer) and before the
HSM and the issuer: a decline ends the transaction with the rule's code and never reaches the
issuer; flags are kept for the journal and the log. The service settles the assessment with the
outcome (switch.service), which is what velocity and card-testing counts learn from.
"""

from __future__ import annotations

from switch.core.context import Answer, Context
from switch.core.participants.admission import SHEDDABLE_MTIS
from switch.core.risk.engine import Hit
from switch.core.risk.facts import Facts, facts_of
from switch.core.states import State


def risk_facts(ctx: Context) -> Facts:
    """The request's facts for the rules, read once per transaction."""
    facts = ctx.risk_facts
    if facts is None:
        txn = ctx.txn
        facts = ctx.risk_facts = facts_of(ctx.request, ctx.pan, txn.pan_hash, None, txn.amount, ctx.connection_number)
    return facts


def limit_rate(ctx: Context) -> Answer | None:
    engine = ctx.switch.risk
    if not engine.rate_limited or ctx.request.mti not in SHEDDABLE_MTIS:
        return None
    txn = ctx.txn
    if ctx.switch.window.previous(txn.tid, txn.stan, txn.transmitted, txn.seen) is not None:
        return None  # a retransmission: answered as the first time, not counted twice
    decline, flags = engine.throttle(risk_facts(ctx), txn.seen)
    if decline is None:
        if flags:
            ctx.rate_hits = flags
        return None
    ctx.rate_hits = [*flags, decline]
    return _declined(decline, State.REJECTED)


def assess_risk(ctx: Context) -> Answer | None:
    engine = ctx.switch.risk
    if not engine.assessing:
        return None
    facts = risk_facts(ctx)
    if ctx.route is not None:
        facts.issuer = ctx.route.issuer
    found = ctx.assessment = engine.assess(facts, ctx.txn.seen)
    if found.decline is None:
        return None
    return _declined(found.decline, State.DECLINED)


def _declined(hit: Hit, state: State) -> Answer:
    return Answer(hit.code, state, hit.describe())
