"""Network management from terminals (0800 sign-on, sign-off, echo): the switch answers itself."""

from __future__ import annotations

from switch.core.codes import RC
from switch.core.context import Answer, Context
from switch.core.states import State


def answer_network_management(ctx: Context) -> Answer:
    return Answer(RC.APPROVED, State.APPROVED, extra={"70": ctx.request["70"]})
