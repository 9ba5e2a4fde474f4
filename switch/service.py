"""The switch as a running service: listeners, issuer links, and the per-request pipeline.

`Switch.handle()` is the path of one transaction (DESIGN.md): check, route by BIN, forward on
the issuer's link, and build the terminal's answer. Decisions come from switch.engine; this
module only awaits and logs.
"""

from __future__ import annotations

import trio

from switch import logs
from switch.acquirer import serve_listener
from switch.config import ListenerConfig, SwitchConfig
from switch.engine import NETWORK_MTI, RC, card_pan, check_request, network_response, respond
from switch.links import IssuerLink, LinkTimeout, LinkUnavailable
from switch.routing import RoutingTable
from switch.wire.masking import mask_pan
from switch.wire.message import Message


class Switch:
    def __init__(self, config: SwitchConfig):
        self.config = config
        self.routing: RoutingTable = config.routing
        self.links = {issuer.name: IssuerLink(issuer) for issuer in config.issuers}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the issuer links and the listeners; reports {listener name: bound port}."""
        async with trio.open_nursery() as nursery:
            for link in self.links.values():
                nursery.start_soon(link.run)
            ports = {}
            for listener in self.config.listeners:
                ports[listener.name] = await nursery.start(serve_listener, self.handle, listener)
            task_status.started(ports)

    async def wait_links_up(self) -> None:
        """Wait until every issuer link is connected (for the demo and tests)."""
        for link in self.links.values():
            await link.connected.wait()

    def replace_routing(self, routing: RoutingTable) -> None:
        """Swap the BIN table; requests already routed keep going to their issuer."""
        self.routing = routing

    async def handle(self, request: Message, listener: ListenerConfig) -> Message:
        started = trio.current_time()
        issuer = None
        code = check_request(request)
        if code is not None:
            response = respond(request, code)
        elif request.mti == NETWORK_MTI:
            response = network_response(request)
        else:
            response, issuer = await self._forward(request, listener)
        pan = card_pan(request)
        logs.event(
            "txn", listener=listener.name, mti=request.mti, pan=mask_pan(pan) if pan else None,
            stan=request.get("11"), tid=request.get("41"), issuer=issuer, rc=response.get("39"),
            latency_ms=round((trio.current_time() - started) * 1000, 3),
        )
        return response

    async def _forward(self, request: Message, listener: ListenerConfig) -> tuple[Message, str | None]:
        entry = self.routing.lookup(card_pan(request) or "")
        if entry is None:
            return respond(request, RC.NO_ROUTE), None
        link = self.links[entry.issuer]
        outgoing = request.copy()
        if "32" not in outgoing and listener.acquirer_id:
            outgoing["32"] = listener.acquirer_id
        try:
            answer = await link.request(outgoing)
        except (LinkUnavailable, LinkTimeout):
            return respond(request, RC.ISSUER_UNAVAILABLE), entry.issuer
        code = answer.get("39")
        if not code or len(code) != 2:
            code = RC.SYSTEM_ERROR
        return respond(request, code, answer), entry.issuer
