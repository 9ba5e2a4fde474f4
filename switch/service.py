"""The switch as a running service: listeners, issuer links, journal, store-and-forward, and the
path of one transaction.

`Switch.handle()` walks a request through: check → duplicate? → route by BIN → forward on the
issuer's link (or stand in) → answer, journaling every step. Decisions come from switch.core.messages
and switch.standin; this module awaits, records and logs.
"""

from __future__ import annotations

import datetime
import itertools
import sqlite3
import time
from collections import OrderedDict
from functools import partial

import trio

from switch import logs
from switch.acquirer import Terminals, serve_listener
from switch.admin import serve_admin
from switch.capture.sink import Capture
from switch.config import IssuerConfig, ListenerConfig, SwitchConfig, load_config
from switch.errors import CardswitchError, ConfigError
from switch.core.codes import RC
from switch.core.messages import (
    ADVICE_MTI, ADVICE_MTIS, NETWORK_MTI, REVERSAL_MTIS, OriginalData, acquirer_advice, card_pan, check_request,
    message_class, network_response, replacement_amount, respond, retained_response, reversal_advice,
    reversal_for_issuer, stand_in_advice,
)
from switch.core.states import NOT_TO_REVERSE
from switch.core.txn import Txn
from switch.core.window import DuplicateWindow
from switch.journal import Journal
from switch.links import IssuerLink, LinkTimeout, LinkUnavailable, MatchKeyInUse
from switch.looplag import LoopLag
from switch.pintries import PinTries
from switch.records import TxnRecords
from switch.routing import RouteContext, RouteEntry, RoutingTable
from switch.saf import StoreAndForward
from switch.security import CardSecurity
from switch.standin import StandIn
from switch.vault import open_vault
from switch.wire.masking import mask_pan
from switch.wire.message import Message, response_mti

TIMED_OUT_MEMORY = 600.0  # seconds a timed-out request waits for its late response
WRITE_GRACE = 1.0  # seconds, at shutdown, for answers already decided to reach their terminals
# What is shed beyond `max_in_flight`: new authorisations and purchases (and their repeats), which
# the terminal retries after a 91. Reversals and advices record money already moved (shedding them
# only means more work later) and network management keeps terminals signed on: never shed.
SHEDDABLE_MTIS = frozenset({"0100", "0101", "0200", "0201"})
OVERLOAD_POLL = 0.05  # seconds: how often, while shedding, the switch looks whether the overload is over


class LinkSaturated(Exception):
    """The issuer's link holds its `max_in_flight` requests: handled like an issuer that does not
    answer (stand-in, else 91); the route's fallback is for a link that is down, not a busy one."""


class Switch:
    def __init__(self, config: SwitchConfig, capture: Capture | None = None):
        self.config = config
        self.capture = capture  # test environments only: records terminal traffic
        self.routing: RoutingTable = config.routing
        self.links = {issuer.name: IssuerLink(issuer, self._unmatched_response) for issuer in config.issuers}
        try:
            self.vault = open_vault(config.data_dir)
            self.journal = Journal(config.data_dir)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(config.source, "switch.data_dir",
                              f"a writable directory for the journal ({config.data_dir}: {exc})") from None
        self.records = TxnRecords(self.journal)
        self.history = DuplicateWindow(config.duplicate_window)
        self.saf = StoreAndForward(self.journal, self.vault, self.links, config.saf)
        self.stand_in = StandIn()
        self.security = CardSecurity(config, self.vault.pan_hash, PinTries(self.journal))
        self.in_flight = 0
        self.loop_lag = LoopLag()
        self._max_in_flight = config.max_in_flight
        self.shed = 0  # requests answered 91 because the switch was overloaded, since start
        self.overloaded = False  # shedding; cleared once in-flight is back below the bound
        self.saturated = {name: 0 for name in self.links}  # per link: requests refused for its bound
        # (issuer, match key) of a timed-out request -> it, and the 0420 a late approval needs
        self._timed_out: OrderedDict[tuple[str, tuple[str, ...]], tuple[Txn, Message]] = OrderedDict()
        # trace -> the event a request waits on while another request it depends on is in flight
        self._finishing: dict[int, trio.Event] = {}
        self._stop = trio.Event()
        self.stopped = trio.Event()
        self._background: trio.Nursery | None = None
        self._trace = itertools.count(self._recover() + 1)

    # -- lifecycle ---------------------------------------------------------------------

    def _recover(self) -> int:
        """Pick up where the last run stopped; returns the highest trace number used so far."""
        cursor = self.journal.connection.execute(
            "UPDATE transactions SET state = 'interrupted', reason = 'switch stopped while in flight'"
            " WHERE state = 'pending'")
        if cursor.rowcount:
            logs.warning("journal_recovered_interrupted", transactions=cursor.rowcount)
        queued = self.saf.load()
        midnight = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        for row in self.journal.read("SELECT issuer, pan_hash, amount FROM transactions"
                                     " WHERE state = 'stood_in' AND created_at >= ?", (midnight.timestamp(),)):
            self.stand_in.record(row["issuer"], row["pan_hash"], row["amount"])
        for txn in self.records.recent(time.time() - self.config.duplicate_window):
            self.history.add(txn)
        last = self.journal.read("SELECT max(trace) AS last FROM transactions")[0]["last"] or 0
        logs.event("journal_open", path=str(self.journal.path), schema=self.journal.version,
                   last_trace=last, saf_open=queued)
        return last

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until `shutdown()`: reports {listener name: bound port} once listening."""
        async with trio.open_nursery() as journal_nursery:
            await journal_nursery.start(self.journal.run)
            journal_nursery.start_soon(logs.write_in_batches)
            async with trio.open_nursery() as core:
                self._background = core
                for link in self.links.values():
                    core.start_soon(link.run)
                core.start_soon(self.saf.run)
                core.start_soon(self.loop_lag.run)
                async with trio.open_nursery() as connections, trio.open_nursery() as transactions:
                    terminals = Terminals(connections, transactions)
                    async with trio.open_nursery() as accepting:
                        ports = {}
                        for listener in self.config.listeners:
                            ports[listener.name] = await accepting.start(
                                partial(serve_listener, self.handle, listener, terminals, capture=self.capture))
                        if self.config.admin_port is not None:
                            ports["admin"] = await accepting.start(
                                serve_admin, self, self.config.admin_host, self.config.admin_port)
                        task_status.started(ports)
                        await self._stop.wait()
                        accepting.cancel_scope.cancel()
                    logs.event("shutdown_draining", in_flight=self.in_flight)
                    terminals.finish()  # nothing new starts; what came in is answered, then closed
                    with trio.move_on_after(self.config.shutdown_grace):
                        while self.in_flight:
                            await trio.sleep(0.01)
                    abandoned = self.in_flight  # journaled as interrupted
                    transactions.cancel_scope.cancel()
                    connections.cancel_scope.deadline = trio.current_time() + WRITE_GRACE
                core.cancel_scope.cancel()
            await self.security.aclose()
            await self.journal.flush()
            logs.event("shutdown_complete", abandoned=abandoned)
            journal_nursery.cancel_scope.cancel()
        self.journal.close()  # the writer thread has written everything and exited
        self.stopped.set()

    def shutdown(self) -> None:
        """Stop accepting, let in-flight transactions finish (bounded), flush the journal."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def wait_links_up(self) -> None:
        """Wait until every issuer link is connected (for the demo and tests)."""
        for link in self.links.values():
            await link.connected.wait()

    def reload_routing(self) -> tuple[bool, str]:
        """Re-read the BIN table from the config file (SIGHUP, admin command). A table that
        fails validation is refused with a logged reason and the running one stays; requests
        already routed keep going to their issuer."""
        try:
            fresh = load_config(self.config.source)
            named = fresh.routing.issuers | {e.fallback for e in fresh.routing.entries if e.fallback}
            unknown = named - set(self.links)
            if unknown:
                raise CardswitchError(f"routes name issuers without a running link: {', '.join(sorted(unknown))}")
        except CardswitchError as exc:
            logs.warning("routes_reload_rejected", reason=str(exc))
            return False, str(exc)
        self.routing = fresh.routing
        logs.event("routes_reloaded", entries=len(fresh.routing))
        return True, f"{len(fresh.routing)} entries"

    def _link_for(self, entry: RouteEntry) -> IssuerLink:
        """The entry's issuer, or its fallback while the issuer's link is down."""
        link = self.links[entry.issuer]
        if not link.up and entry.fallback is not None and self.links[entry.fallback].up:
            return self.links[entry.fallback]
        return link

    # -- one transaction ---------------------------------------------------------------

    async def handle(self, request: Message, listener: ListenerConfig) -> Message:
        if self.in_flight >= self._max_in_flight and request.mti in SHEDDABLE_MTIS and not self._known(request):
            return self._shed(request, listener)
        self.in_flight += 1
        try:
            return await self._handle(request, listener)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: Message, listener: ListenerConfig) -> Message:
        started = trio.current_time()
        pan = card_pan(request)
        txn = self._new_txn(request, pan)
        code = check_request(request)
        original_trace = None
        reason = None
        prior = None
        if code is None and request.mti != NETWORK_MTI:
            prior = self.history.previous(txn.tid, txn.stan, txn.transmitted, txn.seen)
            if prior is None:
                self.history.add(txn)
        self.records.open(txn, request, listener.name, pan)
        response = None
        # Requests run in the switch's nursery (switch.acquirer), so only a shutdown whose grace
        # has run out cancels one; a terminal hanging up does not.
        try:
            if code is not None:
                response, txn.state, reason = respond(request, code), "rejected", "failed checks"
            elif prior is not None:
                response, reason = await self._duplicate(request, txn, prior)
                original_trace = prior.trace
            elif request.mti == NETWORK_MTI:
                response, txn.state = network_response(request), "approved"
            elif txn.mti in REVERSAL_MTIS:
                response, reason, original_trace = await self._reverse(request, txn, listener)
            elif txn.mti in ADVICE_MTIS:
                response, reason = await self._advise(request, txn, listener)
            else:
                response, reason = await self._authorise(request, txn, listener)
        except trio.Cancelled:
            txn.state, reason = "interrupted", "switch stopped while in flight"
            raise
        finally:
            if response is None:  # cancelled, or a bug: the row still gets a final state
                response = respond(request, RC.SYSTEM_ERROR)
                if txn.state != "interrupted":
                    txn.state, reason = "failed", "internal error"
            txn.response = retained_response(response)
            txn.rc = response.get("39")
            txn.approval = response.get("38")
            latency_ms = round((trio.current_time() - started) * 1000, 3)
            self.records.close(txn, latency_ms, reason, original_trace)
            txn.forwarded = None  # what advices needed was built while the request ran
            self._finish(txn)
        _log_txn(listener, request, txn, pan, latency_ms)
        return response

    def _finish(self, txn: Txn) -> None:
        txn.finished = True
        waiting = self._finishing.pop(txn.trace, None)
        if waiting is not None:
            waiting.set()

    async def _wait_finished(self, txn: Txn) -> None:
        """Until `txn` (an original, or the first transmission of a retransmission) is finished."""
        if txn.finished:
            await trio.lowlevel.checkpoint()
            return
        await self._finishing.setdefault(txn.trace, trio.Event()).wait()

    def _shed(self, request: Message, listener: ListenerConfig) -> Message:
        """Overloaded: a new authorisation or purchase is answered 91 at once, journaled
        (rejected, "switch overloaded") and logged, and nothing more: not checked, not
        HSM-processed, not forwarded, and not entered in the duplicate window. The terminal's
        retry (same STAN and time) is therefore a first transmission to the switch, processed
        normally once there is room, not answered as a duplicate of the 91; a rejected row is
        never taken for an original (records.find_original)."""
        started = trio.current_time()
        if not self.overloaded:
            self._overload_started()
        self.shed += 1
        pan = card_pan(request)
        txn = self._new_txn(request, pan)
        self.records.open(txn, request, listener.name, pan)
        response = respond(request, RC.ISSUER_UNAVAILABLE)
        txn.state, txn.rc = "rejected", RC.ISSUER_UNAVAILABLE
        txn.response = retained_response(response)
        latency_ms = round((trio.current_time() - started) * 1000, 3)
        self.records.close(txn, latency_ms, "switch overloaded", None)
        _log_txn(listener, request, txn, pan, latency_ms)
        return response

    def _known(self, request: Message) -> bool:
        """A retransmission of a request in the duplicate window: answered as the first time even
        when overloaded, which costs no forwarding (and a 91 would contradict an approval)."""
        key = (request.get("41", ""), request.get("11", ""), request.get("7", ""))
        return self.history.previous(*key, time.monotonic()) is not None

    def _overload_started(self) -> None:
        """One warning when shedding starts; a background task notices when it is over, so the
        normal path pays nothing for that."""
        if self._background is None:  # not running: nothing would ever clear the flag
            return
        self.overloaded = True
        logs.warning("overloaded", in_flight=self.in_flight, max_in_flight=self._max_in_flight)
        self._background.start_soon(self._watch_overload, self.shed)

    async def _watch_overload(self, shed_before: int) -> None:
        """The overload is over once in-flight is below the bound and nothing was shed for a
        whole OVERLOAD_POLL (a switch hovering at its bound would otherwise log a pair of
        lines every time one slot frees up)."""
        shed = -1
        while self.in_flight >= self._max_in_flight or shed != self.shed:
            shed = self.shed
            await trio.sleep(OVERLOAD_POLL)
        self.overloaded = False
        logs.event("overload_cleared", in_flight=self.in_flight, max_in_flight=self._max_in_flight,
                   shed=self.shed - shed_before)

    def _new_txn(self, request: Message, pan: str | None) -> Txn:
        amount = request.get("4", "")
        return Txn(trace=next(self._trace), mti=message_class(request.mti), tid=request.get("41", ""),
                   stan=request.get("11", ""), transmitted=request.get("7", ""), rrn=request.get("37"),
                   amount=int(amount) if amount.isdigit() else 0,
                   pan_hash=self.vault.pan_hash(pan) if pan else None, created=time.time(), seen=time.monotonic())

    async def _duplicate(self, request: Message, txn: Txn, prior: Txn) -> tuple[Message, str]:
        """A retransmission is answered as the first time, never forwarded again."""
        if (prior.mti, prior.amount, prior.pan_hash) != (txn.mti, txn.amount, txn.pan_hash):
            txn.state = "rejected"
            return respond(request, RC.DUPLICATE), "same terminal, STAN and time, different content"
        with trio.move_on_after(self._longest_timeout() + 1):
            await self._wait_finished(prior)
        txn.state, txn.issuer = "duplicate", prior.issuer
        if prior.response is None or prior.rc is None:
            return respond(request, RC.ISSUER_UNAVAILABLE), "retransmission while the original is in flight"
        first = Message(response_mti(request.mti), prior.response)  # the first answer, as kept
        return respond(request, prior.rc, first), "retransmission answered from the journal"

    def _longest_timeout(self) -> float:
        return max((issuer.timeout for issuer in self.config.issuers), default=5.0)

    def _route(self, request: Message) -> RouteEntry | None:
        """The BIN table's entry for the request's card, under its MTI, processing code and currency."""
        context = RouteContext(request.mti, request.get("3"), request.get("49"))
        return self.routing.lookup(card_pan(request) or "", context)

    async def _authorise(self, request: Message, txn: Txn, listener: ListenerConfig) -> tuple[Message, str | None]:
        entry = self._route(request)
        if entry is None:
            txn.state = "rejected"
            return respond(request, RC.NO_ROUTE), "no route"
        link = self._link_for(entry)
        txn.issuer = link.name
        outgoing = request.copy()
        outgoing.mti = txn.mti  # a repeat (0201) the issuer never saw the first of is a first transmission
        if "32" not in outgoing and listener.acquirer_id:
            outgoing["32"] = listener.acquirer_id
        declined = await self.security.check(request, outgoing, listener, link.config)
        if declined is not None:
            txn.state = declined.state
            return respond(request, declined.code), declined.reason
        try:
            answer = await self._send(link, outgoing, txn)
        except LinkUnavailable:
            return await self._without_issuer(request, txn, link.config, "issuer unavailable")
        except LinkSaturated:
            return await self._without_issuer(request, txn, link.config, "issuer link saturated")
        except LinkTimeout:
            self._remember_timeout(link, txn)
            return await self._without_issuer(request, txn, link.config, "issuer timed out", "timed_out")
        except MatchKeyInUse:
            txn.state = "rejected"
            return respond(request, RC.DUPLICATE), "a request with the same match key is in flight at the issuer"
        code = answer.get("39")
        if not code or len(code) != 2:
            txn.state = "failed"
            return respond(request, RC.SYSTEM_ERROR), "issuer response without a valid field 39"
        txn.state = "approved" if code == RC.APPROVED else "declined"
        return respond(request, code, answer), None

    async def _send(self, link: IssuerLink, outgoing: Message, txn: Txn) -> Message:
        """Forward to the issuer, remembering what it was sent (its STAN is the link's), without
        card secrets, for the reversal or advice that may follow; journaled the moment it is
        sent, so a crash while the issuer decides still leaves the reversal a name to use. A link
        already holding its issuer's `max_in_flight` requests is not asked (LinkSaturated)."""
        def sent(message: Message) -> None:
            txn.sent_as = OriginalData.of(message).encode()
            self.records.forwarded(txn)

        txn.forwarded = outgoing  # the link gives it its STAN in place; advices drop its card data
        bound = link.config.max_in_flight
        if bound is not None and link.in_flight >= bound:
            self.saturated[link.name] += 1
            txn.sent_as = OriginalData.of(outgoing).encode()  # never sent: a stand-in's reversal needs a name
            raise LinkSaturated(link.name)
        asked = trio.current_time()
        try:
            return await link.request(outgoing, sent)
        finally:
            txn.issuer_ms = round((trio.current_time() - asked) * 1000, 3)
            if txn.sent_as is None:  # never sent (link down): a stand-in's reversal still needs a name
                txn.sent_as = OriginalData.of(outgoing).encode()

    async def _without_issuer(self, request: Message, txn: Txn, issuer: IssuerConfig,
                              why: str, state: str = "failed") -> tuple[Message, str]:
        """The issuer is down, too slow or its link saturated (`why`): stand in within its
        limits, else 91 with the journal state `state`."""
        limits = issuer.stand_in
        if limits is None or "52" in request:  # a PIN cannot be judged without the issuer
            txn.state = state
            return respond(request, RC.ISSUER_UNAVAILABLE), why
        decision = self.stand_in.decide(limits, issuer.name, txn.pan_hash or "", request["3"],
                                        request.get("18"), txn.amount)
        if not decision.approved:
            txn.state = "declined"
            return respond(request, decision.code), f"{why}; {decision.reason}"
        await self.saf.enqueue(issuer.name, txn.trace, "stand_in_advice",
                               stand_in_advice(txn.forwarded, decision.approval))
        txn.state, txn.stood_in = "stood_in", True
        response = respond(request, RC.APPROVED)
        response["38"] = decision.approval
        return response, f"{why}; {decision.reason}"

    # -- late responses ----------------------------------------------------------------

    def _remember_timeout(self, link: IssuerLink, txn: Txn) -> None:
        """Keep, for a while, the reversal a late approval of `txn` would need: built now, while
        the forwarded copy exists (it is dropped when the transaction ends, whatever its outcome)."""
        advice = reversal_advice(txn.forwarded, reason=RC.LATE_RESPONSE)
        self._timed_out[(link.name, link.request_key(txn.forwarded))] = (txn, advice)
        horizon = time.time() - TIMED_OUT_MEMORY
        while self._timed_out:
            key, (oldest, _) = next(iter(self._timed_out.items()))
            if oldest.created >= horizon:
                break
            del self._timed_out[key]

    def _unmatched_response(self, issuer: str, key: tuple[str, ...], response: Message) -> None:
        """A response nobody waits for: if it answers a timed-out request, an approval that came
        too late is reversed at the issuer (0420 via SAF); anything else is logged."""
        txn, advice = self._timed_out.pop((issuer, key), (None, None))
        rc = response.get("39")
        logs.warning("issuer_response_unmatched", issuer=issuer, mti=response.mti, stan=response.get("11"),
                     tid=response.get("41"), rc=rc, late_for_trace=txn.trace if txn else None)
        if txn is None:
            return
        self.records.late_response(txn.trace, rc)
        if rc == RC.APPROVED and self._background is not None:
            self._background.start_soon(self._queue_late_reversal, issuer, txn.trace, advice)

    async def _queue_late_reversal(self, issuer: str, trace: int, advice: Message) -> None:
        """Runs in the switch's core nursery, so a journal that cannot write costs a logged
        warning (the row keeps its late_rc for `journal check`), never the switch."""
        try:
            await self.saf.enqueue(issuer, trace, "late_reversal", advice)
        except Exception as exc:
            logs.warning("late_reversal_not_queued", issuer=issuer, trace=trace, error=type(exc).__name__)

    # -- reversals and advices -----------------------------------------------------------

    async def _reverse(self, request: Message, txn: Txn,
                       listener: ListenerConfig) -> tuple[Message, str | None, int | None]:
        """A reversal (0400) or reversal advice (0420): the original is undone in the journal and
        at its issuer, once. An advice is never declined: without a known original it still goes
        to the card's issuer, which may know it."""
        original = await self._find_original(request, txn)
        if original is None:
            if txn.mti in ADVICE_MTIS:
                response, reason = await self._advise(request, txn, listener,
                                                    "original not found: advised to the card's issuer")
                return response, reason, None
            txn.state = "rejected"
            return respond(request, RC.ORIGINAL_NOT_FOUND), "original not found", None
        if not original.finished:  # reversed while still in flight: let it finish first
            with trio.move_on_after(self._longest_timeout() + 1):
                await self._wait_finished(original)
        txn.issuer = original.issuer
        txn.state = "approved"
        if original.state in NOT_TO_REVERSE or original.issuer is None:
            return respond(request, RC.APPROVED), f"original {original.state}: not forwarded", original.trace
        outgoing = reversal_for_issuer(request, txn.mti, original.sent_as)
        reason = await self._deliver_reversal(outgoing, original)
        reversed_before = original.reversed_amount
        self._mark_reversed(original, replacement_amount(request))
        if original.stood_in:  # the card gets its daily stand-in allowance back
            self.stand_in.release(original.issuer or "", original.pan_hash or "",
                                  original.reversed_amount - reversed_before, original.state == "reversed",
                                  original.created)
        return respond(request, RC.APPROVED), reason, original.trace

    async def _deliver_reversal(self, outgoing: Message, original: Txn) -> str | None:
        """An 0400 goes to the issuer online; an 0420, and an 0400 the issuer cannot take now,
        go through SAF as an 0420. Returns why an 0400 was not delivered online, if it was not."""
        reason = None
        if outgoing.mti not in ADVICE_MTIS:
            reason = await self._reverse_online(outgoing, original)
            if reason is None:
                return None
            outgoing.mti = ADVICE_MTI[outgoing.mti]
        await self.saf.enqueue(original.issuer, original.trace, "reversal", outgoing)
        return reason

    async def _reverse_online(self, outgoing: Message, original: Txn) -> str | None:
        """Send an 0400 to the original's issuer; None once it acknowledged, else why not."""
        link = self.links.get(original.issuer)
        if original.stood_in or link is None:  # the issuer may not have the stand-in advice yet
            return "reversal advised via SAF"
        try:
            answer = await link.request(outgoing)
        except (LinkUnavailable, LinkTimeout, MatchKeyInUse):
            return "issuer unavailable: reversal advised via SAF"
        if answer.get("39") != RC.APPROVED:
            return f"issuer answered {answer.get('39')}: reversal advised via SAF"
        return None

    async def _advise(self, request: Message, txn: Txn, listener: ListenerConfig,
                      reason: str | None = None) -> tuple[Message, str | None]:
        """A terminal's advice (0120, 0220, or an 0420 without a known original): something that
        already happened, so it is not declined. It is answered 00 once it is durably queued for
        the card's issuer (not a fallback: the issuer of record must learn of it), which SAF
        delivers however long the issuer is away. Only a card without a route gets 15: an
        advice the switch could never deliver must not be acknowledged."""
        entry = self._route(request)
        if entry is None:
            txn.state = "rejected"
            return respond(request, RC.NO_ROUTE), "no route"
        txn.issuer, txn.state = entry.issuer, "approved"
        advice = acquirer_advice(request, listener.acquirer_id)
        await self.saf.enqueue(entry.issuer, txn.trace, "acquirer_advice", advice)
        return respond(request, RC.APPROVED), reason

    async def _find_original(self, request: Message, txn: Txn) -> Txn | None:
        data = OriginalData.parse(request["90"])
        if data.identifies_original:
            found = self.history.original(txn.tid, data.mti, data.stan, data.transmitted)
            return found or await self.records.find_original(txn.tid, data.mti, data.stan, data.transmitted)
        rrn = request.get("37")
        if not rrn:
            return None
        return self.history.by_rrn(rrn, txn.tid, txn.amount) or await self.records.find_by_rrn(rrn, txn.tid, txn.amount)

    def _mark_reversed(self, original: Txn, replacement: int | None) -> None:
        if replacement is not None and replacement < original.amount:
            original.state = "partially_reversed"
            original.reversed_amount = original.amount - replacement
        else:
            original.state = "reversed"
            original.reversed_amount = original.amount
        self.records.reversed(original)


def _log_txn(listener: ListenerConfig, request: Message, txn: Txn, pan: str | None, latency_ms: float) -> None:
    """The one log line of every transaction (the card masked)."""
    logs.event("txn", listener=listener.name, trace=txn.trace, mti=request.mti,
               pan=mask_pan(pan) if pan else None, stan=txn.stan, tid=txn.tid, issuer=txn.issuer,
               rc=txn.rc, state=txn.state, latency_ms=latency_ms, issuer_ms=txn.issuer_ms)
