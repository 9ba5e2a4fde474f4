"""Format and support checks: 12 for what the switch does not handle, 30 for what it cannot read
(missing mandatory fields, fields out of format). Advices get the same checks as requests.

The journal's reason names the field and the check (`field 4: 12 digits expected`), never the
value; a 30 also tells the terminal, briefly, in field 44 (additional response data)."""

from __future__ import annotations

from switch.core.codes import RC
from switch.core.context import Answer, Context
from switch.core.messages import check_request
from switch.core.states import State


def validate(ctx: Context) -> Answer | None:
    rejection = check_request(ctx.request)
    if rejection is None:
        return None
    extra = {"44": rejection.brief} if rejection.code == RC.FORMAT_ERROR else None
    return Answer(rejection.code, State.REJECTED, rejection.reason, extra=extra)
