"""Card security: CVV, iCVV and CVV2 checks, PIN translation from the terminal's key to the
issuer's and PIN verification on the issuer's behalf, all done by the HSM (switch.security
performs the conversation). Only asked where there is something to check or translate."""

from __future__ import annotations

from typing import Generator

from switch.core.context import Answer, CardChecked, CheckCard, Context, Effect


def check_card(ctx: Context) -> Generator[Effect, object, Answer | None]:
    outgoing = ctx.outgoing
    assert outgoing is not None  # prepared by forwarding.prepare_outgoing
    checked = yield CheckCard(ctx.link, outgoing)
    assert isinstance(checked, CardChecked)
    if checked.decline is not None:
        code, state, reason = checked.decline
        return Answer(code, state, reason)
    if checked.pin_block is not None:  # the terminal's PIN block, now under the issuer's key
        outgoing.fields["52"] = checked.pin_block
    return None
