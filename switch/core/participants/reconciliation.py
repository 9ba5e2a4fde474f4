"""Acquirer reconciliation (0500, and the 0520 advice): the sender's batch totals for a business
date against the journal's (switch.core.reconciliation). Totals that agree: 00. Totals that
differ: 95, with the switch's own totals in the same fields, so the terminal can tell which. The
answer carries the business date it was about in field 15."""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, JournalTotals
from switch.core.reconciliation import NET_FIELD, Totals, business_date_of, differences
from switch.core.states import State


def reconcile_totals(ctx: Context) -> Generator[Effect, object, Answer | None]:
    fields = ctx.request.fields
    date = business_date_of(fields["15"], ctx.switch.business.date)  # a valid MMDD: validation
    assert date is not None
    by, key = ("terminal", fields["41"]) if "41" in fields else ("acquirer", fields["32"])
    ours = yield JournalTotals(date, by, key, fields.get("49"))
    assert isinstance(ours, Totals)
    differ = differences(Totals.from_fields(fields), ours, fields.get(NET_FIELD))
    echoed = {"15": fields["15"]}
    if not differ:
        return Answer(RC.APPROVED, State.APPROVED, f"{by} totals of {date} agree", extra=echoed)
    return Answer(RC.RECONCILIATION_DIFFERS, State.DECLINED,
                  f"{by} totals of {date} differ in field{'s' if len(differ) > 1 else ''} {', '.join(differ)}",
                  extra=echoed | ours.fields())
