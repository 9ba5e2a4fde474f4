"""Format and support checks: 12 for what the switch does not handle, 30 for what it cannot read
(missing mandatory fields, fields out of format). Advices get the same checks as requests."""

from __future__ import annotations

from switch.core.context import Answer, Context
from switch.core.messages import check_request
from switch.core.states import State


def validate(ctx: Context) -> Answer | None:
    code = check_request(ctx.request)
    if code is None:
        return None
    return Answer(code, State.REJECTED, "failed checks")
