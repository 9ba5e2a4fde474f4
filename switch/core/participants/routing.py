"""BIN routing: the routing table's entry for the card, under the request's MTI, processing code
and currency; 15 when there is none. For a request that goes online, the link: the entry's
issuer, or its fallback while the issuer's link is down."""

from __future__ import annotations

from switch.core.codes import RC
from switch.core.context import Answer, Context
from switch.core.states import State
from switch.routing import RouteContext


def route_by_bin(ctx: Context) -> Answer | None:
    request = ctx.request
    fields = request.fields
    entry = ctx.switch.routing.lookup(ctx.pan or "", RouteContext(request.mti, fields.get("3"), fields.get("49")))
    if entry is None:
        return Answer(RC.NO_ROUTE, State.REJECTED, "no route")
    ctx.route = entry
    links = ctx.switch.links
    link = links[entry.issuer]
    if not link.up and entry.fallback is not None and links[entry.fallback].up:
        link = links[entry.fallback]
    ctx.link = link
    return None
