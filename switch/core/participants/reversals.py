"""Reversals (0400) and reversal advices (0420): the original is undone in the journal and at its
issuer, once.

The original is found in the duplicate window, else in the journal (by field 90's MTI, STAN and
time, or by RRN when the terminal zero-filled them). One still in flight is waited for. An 0400
goes to the issuer online; an 0420, and an 0400 the issuer cannot take now, go through SAF as an
0420. An advice is never declined: without a known original it goes on to the card's issuer
(routing and advices, next in the pipeline), which may know it.
"""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import (
    Answer, Context, Effect, Enqueue, Exchange, FindByRrn, FindOriginal, JournalReversed, Prepare, ReleaseStandIn,
    WaitFor,
)
from switch.core.messages import ADVICE_MTI, ADVICE_MTIS, OriginalData, replacement_amount, reversal_for_issuer
from switch.core.states import NOT_TO_REVERSE, State
from switch.core.txn import Txn
from switch.wire.message import Message


def find_original(ctx: Context) -> Generator[Effect, object, Answer | None]:
    txn, request = ctx.txn, ctx.request
    window = ctx.switch.window
    data = OriginalData.parse(request["90"])
    found: object = None
    if data.identifies_original:
        found = window.original(txn.tid, data.mti, data.stan, data.transmitted)
        if found is None:
            found = yield FindOriginal(txn.tid, data.mti, data.stan, data.transmitted)
    elif rrn := request.fields.get("37"):
        found = window.by_rrn(rrn, txn.tid, txn.amount)
        if found is None:
            found = yield FindByRrn(rrn, txn.tid, txn.amount)
    if isinstance(found, Txn):
        ctx.original, ctx.original_trace = found, found.trace
        return None
    if txn.mti in ADVICE_MTIS:
        ctx.reason = "original not found: advised to the card's issuer"
        return None
    return Answer(RC.ORIGINAL_NOT_FOUND, State.REJECTED, "original not found")


def reverse_original(ctx: Context) -> Generator[Effect, object, Answer | None]:
    original = ctx.original
    if original is None:  # an advice of an unknown original: on to the card's issuer
        return None
    if not original.finished:  # reversed while still in flight: let it finish first
        yield WaitFor(original)
    txn, request = ctx.txn, ctx.request
    txn.issuer = original.issuer
    if original.state in NOT_TO_REVERSE or original.issuer is None:
        return Answer(RC.APPROVED, State.APPROVED, f"original {original.state}: not forwarded")
    outgoing = reversal_for_issuer(request, txn.mti, original.sent_as)
    advice = outgoing if outgoing.mti in ADVICE_MTIS else Message(ADVICE_MTI[outgoing.mti], outgoing.fields)
    reversed_amount = _reversed_amount(original, replacement_amount(request))
    if not (yield Prepare(advice, original, reversed_amount)):  # recovery completes it if the switch stops now
        return Answer(RC.APPROVED, State.APPROVED, "original already reversed by another instance: not forwarded")
    reason = None
    if outgoing.mti not in ADVICE_MTIS:
        reason = yield from _reverse_online(ctx, outgoing, original)
    if outgoing.mti in ADVICE_MTIS or reason is not None:
        yield Enqueue(original.issuer, original.trace, "reversal", advice)
    reversed_before = original.reversed_amount
    mark_reversed(original, reversed_amount)
    yield JournalReversed(original)
    if original.stood_in:  # the card gets its daily stand-in allowance back
        release = (original.issuer, original.pan_hash or "", original.reversed_amount - reversed_before,
                   original.state == State.REVERSED, original.created)
        if ctx.switch.shared_journal:
            yield ReleaseStandIn(*release)
        else:
            ctx.switch.stand_in.release(*release)
    return Answer(RC.APPROVED, State.APPROVED, reason)


def _reverse_online(ctx: Context, outgoing: Message, original: Txn) -> Generator[Effect, object, str | None]:
    """Send an 0400 to the original's issuer; None once it acknowledged, else why not."""
    link = ctx.switch.links.get(original.issuer or "")
    if original.stood_in or link is None:  # the issuer may not have the stand-in advice yet
        return "reversal advised via SAF"
    answer = yield Exchange(link, link.matcher.outgoing(outgoing), own=False)
    if not isinstance(answer, Message):
        return "issuer unavailable: reversal advised via SAF"
    code = answer.fields.get("39")
    if code != RC.APPROVED:
        return f"issuer answered {code}: reversal advised via SAF"
    return None


def _reversed_amount(original: Txn, replacement: int | None) -> int:
    """How much of the original is reversed once this reversal is done: down to field 95's
    replacement amount for a partial reversal, else all of it."""
    if replacement is not None and replacement < original.amount:
        return original.amount - replacement
    return original.amount


def mark_reversed(original: Txn, reversed_amount: int) -> None:
    """`original` reversed down to `reversed_amount` (also used by recovery after a crash)."""
    original.reversed_amount = max(original.reversed_amount, reversed_amount)
    original.move_to(State.REVERSED if original.reversed_amount >= original.amount else State.PARTIALLY_REVERSED)
