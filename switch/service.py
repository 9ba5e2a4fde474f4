"""The switch as a running service: listeners, issuer links, journal, store-and-forward, and the
shell around the pipeline of one transaction.

What happens to a request is decided in switch.core.pipeline, free of I/O; `Switch.handle()`
walks a request through it and performs the effects its participants ask for (HSM, issuer link,
journal, store-and-forward, waiting), then journals, logs and answers. Every time here is trio's
clock (`trio.current_time()`), so tests can run it on a MockClock; the wall clock only stamps
journal rows.
"""

from __future__ import annotations

import datetime
import time
from collections import OrderedDict
from functools import partial
from typing import Callable, Sequence

import trio

from switch import logs
from switch.acquirer import Terminals, serve_listener
from switch.admin import serve_admin
from switch.admintoken import ensure_token
from switch.capture.sink import Capture
from switch.config import ListenerConfig, SwitchConfig, load_config
from switch.core.business import BusinessDay
from switch.core.codes import RC
from switch.core.context import (
    Answer, CheckCard, Claim, Context, JournalTotals, Effect, Enqueue, Exchange, FindByRrn, FindOriginal, JournalReversed,
    LinkFailure, Prepare, ReleaseStandIn, ReserveStandIn, Shed, VerifyMac, WaitFor, Warn,
)
from switch.core.matcher import KeyInUse
from switch.core.messages import OriginalData, card_pan, message_class, respond, retained_response, unknown_approval_reversal
from switch.core.pipeline import Step, pipeline_for
from switch.core.risk.engine import Alert, RiskEngine
from switch.core.risk.facts import Facts, facts_of
from switch.core.risk.rules import PRESENT
from switch.core.standin import StandIn
from switch.core.states import State
from switch.core.terminals import ConnectionInfo
from switch.core.txn import Txn
from switch.core.window import DuplicateWindow
from switch.errors import CardswitchError
from switch.hsm.client import InProcessHsm, TcpHsm
from switch.issuer_keys import IssuerKeys
from switch.instances import recover_at_start, register, stopped as instance_stopped, watch as watch_instances
from switch.links import IssuerLink, LinkDropped, LinkMacFailed, LinkTimeout, LinkUnavailable
from switch.looplag import LoopLag
from switch.macs import Macs
from switch.metrics import SwitchMetrics, serve_metrics
from switch.pintries import pin_tries_for
from switch.records import TxnRecords, txn_from_row
from switch.recovery import last_stans
from switch.stores import open_journal
from switch.txnline import log_txn
from switch.routing import RoutingTable
from switch.saf import StoreAndForward
from switch.security import CardSecurity, open_hsm
from switch.settlement import movements, totals_of, write_settlement_files
from switch.tls import TlsEndpoint, reload_endpoints
from switch.vault import open_vault
from switch.wire.masking import mask_pan_like
from switch.wire.message import Message

AUTHORISATIONS = frozenset({"0100", "0200"})  # the message classes risk rules judge
TIMED_OUT_MEMORY = 600.0  # seconds a timed-out request waits for its late response
WRITE_GRACE = 1.0  # seconds, at shutdown, for answers already decided to reach their terminals
BUSINESS_DAY_POLL = 1.0  # seconds between looks at the clock and the journal for a new business date
SETTLEMENT_DIR = "settlement"  # under the data directory: DATE/ISSUER.csv, written at cutover
# Seconds after a cutover before the day's settlement files are written: what other instances
# decided just before it reaches the journal first.
SETTLEMENT_FILES_DELAY = 2.0
RISK_SHARE_INTERVAL = 1.0  # seconds: how stale another instance's risk counts may be here (shared journal)
_RISK_COLUMNS = "created_at, pan_hash, tid, mid, country, amount, rc, risk_counted"
REMOTE_POLL = 0.02  # seconds between looks at a request another instance runs, while one waits for it
OVERLOAD_POLL = 0.05  # seconds: how often, while shedding, the switch looks whether the overload is over


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def utc_today() -> datetime.date:
    """The stand-in day: daily limits reset at UTC midnight."""
    return datetime.datetime.now(datetime.timezone.utc).date()


class Switch:
    def __init__(self, config: SwitchConfig, capture: Capture | None = None):
        self.config = config
        self.capture = capture  # test environments only: records terminal traffic
        self.routing: RoutingTable = config.routing
        self.hsm: InProcessHsm | TcpHsm | None = None  # one client: card security, MACs, key changes
        self.macs: Macs | None = None
        keys: IssuerKeys | None = None
        if config.hsm is not None:
            self.hsm = open_hsm(config.hsm, config.source)
            self.macs, keys = Macs(self.hsm, config.hsm), IssuerKeys(self.hsm, config.hsm)
        self.links = {issuer.name: IssuerLink(issuer, self._unmatched_response, self.macs, keys)
                      for issuer in config.issuers}
        self.vault = open_vault(config.data_dir)  # raises ConfigError naming switch.data_dir
        self.journal = open_journal(config)
        self.registered = register(self.journal, self.vault.check_value(), config.instance_lease)
        self.instance = self.registered.id
        self.shared_journal = self.journal.shared  # read by participants on every request: a plain attribute
        self.admin_token = ensure_token(config.admin_token_path) if config.admin_port is not None else ""
        self.records = TxnRecords(self.journal, self.instance)
        self.business = BusinessDay(config.cutover, utc_now(), self._recorded_business_date())
        self.window = DuplicateWindow(config.duplicate_window)
        self.saf = StoreAndForward(self.journal, self.vault, self.links, config.saf, self.instance)
        self.stand_in = StandIn(utc_today)
        self.risk = RiskEngine(config.risk)
        self.security = CardSecurity(config, self.hsm, self.vault.pan_hash, pin_tries_for(self.journal))
        self.listener_tls = {listener.name: TlsEndpoint(listener.tls, server_side=True)
                             for listener in config.listeners if listener.tls is not None}
        self.in_flight = 0
        self.loop_lag = LoopLag()
        self._max_in_flight = config.max_in_flight
        self._longest_timeout = max((issuer.timeout for issuer in config.issuers), default=5.0)
        self.shed = 0  # requests answered 91 because the switch was overloaded, since start
        self.overloaded = False  # shedding; cleared once in-flight is back below the bound
        self.saturated = {name: 0 for name in self.links}  # per link: requests refused for its bound
        # (issuer, match key) of a timed-out request -> its trace, and when it timed out (trio's clock)
        self._timed_out: OrderedDict[tuple[str, tuple[str, ...]], tuple[int, float]] = OrderedDict()
        # trace -> the event a request waits on while another request it depends on is in flight
        self._finishing: dict[int, trio.Event] = {}
        self._reloading = trio.Lock()
        self._stop = trio.Event()
        self.stopped = trio.Event()
        self._background: trio.Nursery | None = None
        self._recover()
        self._trace = self.journal.trace_numbers()
        self.metrics = SwitchMetrics(self) if config.metrics_port is not None else None

    # -- lifecycle ---------------------------------------------------------------------

    def _recover(self) -> None:
        """Pick up where the last run (or a dead instance) stopped."""
        recover_at_start(self.journal, self.instance, self.config.instance_lease, self.business.iso)
        for name, stan in last_stans(self.journal.connection, list(self.links), *self.registered.stan_range).items():
            self.links[name].matcher.stan_range = self.registered.stan_range
            self.links[name].matcher.last_stan = stan
        queued = self.saf.load()
        if not self.journal.shared:  # a shared journal counts stand-in usage itself (stand_in_usage)
            midnight = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
            for row in self.journal.read("SELECT issuer, pan_hash, amount FROM transactions"
                                         " WHERE state = 'stood_in' AND created_at >= ?", (midnight.timestamp(),)):
                self.stand_in.record(row["issuer"], row["pan_hash"], row["amount"])
        logs.event("journal_open", path=self.journal.where, schema=self.journal.version, instance=self.instance,
                   slot=self.registered.slot, shared=self.journal.shared, saf_open=queued)

    def _load_window(self) -> None:
        """The duplicate window survives a restart: the journal's recent requests, each aged on
        the switch's clock by its age on the wall clock (the best there is for an earlier run)."""
        for txn in self.records.recent(time.time() - self.config.duplicate_window, trio.current_time()):
            self.window.add(txn)

    def _replay_risk(self) -> None:
        """The risk rules' counts survive a restart: the journal's requests within the longest
        memory of any rule, back into the rules they counted in, each at its age on the wall
        clock before now on the switch's clock."""
        if not self.risk.longest:
            return
        rows = self.journal.read(
            f"SELECT {_RISK_COLUMNS} FROM transactions WHERE created_at >= ? AND risk_counted IS NOT NULL"
            " ORDER BY created_at", (time.time() - self.risk.longest,))
        self._replay_risk_rows(rows)
        logs.event("risk_rules_loaded", rules=len(self.risk.rules), source=self.risk.rules.source or None,
                   replayed=len(rows), held=self.risk.held())

    def _replay_risk_rows(self, rows: list) -> None:
        now, wall = trio.current_time(), time.time()
        for row in rows:
            facts = Facts(pan=None, pan_hash=row["pan_hash"], issuer=None, terminal=row["tid"], acquirer=None,
                          merchant=row["mid"], mcc=None, country=row["country"], channel=PRESENT,
                          amount=row["amount"] or 0, has_pin=False)
            self.risk.replay(facts, row["rc"] or "", row["risk_counted"].split(","), now - (wall - row["created_at"]))

    async def _share_risk_counts(self) -> None:
        """On a shared journal, once every RISK_SHARE_INTERVAL: what the other instances' requests
        counted in the risk rules, into this instance's counts. The counts are shared with that
        lag: a burst spread over instances within it can pass a velocity limit by what the
        others approved meanwhile (PIN tries, duplicates and reversals are exact: the journal
        decides them). A row is read once, whenever its request finishes (the look-back covers
        the longest an issuer may take)."""
        if not self.journal.shared:
            return
        look_back = self._longest_timeout + RISK_SHARE_INTERVAL * 5
        seen: dict[int, float] = {}  # trace -> created_at, of rows read within the look-back
        while True:
            await trio.sleep(RISK_SHARE_INTERVAL)
            if not self.risk.longest:
                continue
            since = time.time() - look_back
            try:
                rows = await self.journal.commit(lambda connection: connection.execute(
                    f"SELECT trace, {_RISK_COLUMNS} FROM transactions WHERE created_at >= ? AND instance != ?"
                    " AND risk_counted IS NOT NULL ORDER BY created_at", (since, self.instance)).fetchall())
            except Exception as exc:  # the journal is stalled or failing: the next look catches up
                logs.warning("risk_share_failed", error=type(exc).__name__)
                continue
            fresh = [row for row in rows if row["trace"] not in seen]
            self._replay_risk_rows(fresh)
            seen = {trace: created for trace, created in seen.items() if created >= since}
            seen.update((row["trace"], row["created_at"]) for row in fresh)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until `shutdown()`: reports {listener name: bound port} once listening."""
        self._load_window()
        self._replay_risk()
        async with trio.open_nursery() as journal_nursery:
            await journal_nursery.start(self.journal.run)
            journal_nursery.start_soon(logs.write_in_batches)
            async with trio.open_nursery() as core:
                self._background = core
                for link in self.links.values():
                    core.start_soon(link.run)
                core.start_soon(self.saf.run)
                core.start_soon(watch_instances, self.journal, self.instance, self.config.instance_lease,
                                self._adopt_saf, lambda: self.business.iso)
                core.start_soon(self.loop_lag.run)
                core.start_soon(self._share_risk_counts)
                core.start_soon(self._keep_business_day)
                async with trio.open_nursery() as connections, trio.open_nursery() as transactions:
                    terminals = Terminals(connections, transactions)
                    async with trio.open_nursery() as accepting:
                        ports = {}
                        for listener in self.config.listeners:
                            ports[listener.name] = await accepting.start(
                                partial(serve_listener, self.handle, listener, terminals, capture=self.capture,
                                        tls=self.listener_tls.get(listener.name)))
                        if self.config.admin_port is not None:
                            ports["admin"] = await accepting.start(
                                serve_admin, self, self.config.admin_host, self.config.admin_port, self.admin_token)
                        if self.metrics is not None:
                            ports["metrics"] = await accepting.start(
                                serve_metrics, self.metrics, self.config.metrics_host, self.config.metrics_port)
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
            instance_stopped(self.journal, self.instance)
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

    async def reload_routing(self) -> tuple[bool, str]:
        """Re-read the BIN table from the config file (SIGHUP, admin command). The table is
        read and built off the event loop (a worker thread: terminals keep being served while a
        large table builds) and swapped in at once; one reload at a time. A table that fails
        validation is refused with a logged reason and the running one stays; requests already
        routed keep going to their issuer."""
        async with self._reloading:
            try:
                fresh = await trio.to_thread.run_sync(self._read_routing)
            except CardswitchError as exc:
                logs.warning("routes_reload_rejected", reason=str(exc))
                return False, str(exc)
            self.routing = fresh
        logs.event("routes_reloaded", entries=len(fresh))
        return True, f"{len(fresh)} entries"

    async def reload_risk(self) -> tuple[bool, str]:
        """Re-read the risk rules named in the config file (SIGHUP, `admin reload-risk`), in a
        thread, checked as at start; a file that fails is refused with a logged reason and the
        running rules stay. Rules still defined the same way keep their counts."""
        async with self._reloading:
            try:
                fresh = await trio.to_thread.run_sync(lambda: load_config(self.config.source).risk)
            except CardswitchError as exc:
                logs.warning("risk_reload_rejected", reason=str(exc))
                return False, str(exc)
            self.risk = RiskEngine(fresh, previous=self.risk)
        logs.event("risk_reloaded", rules=len(fresh), source=fresh.source or None)
        return True, f"{len(fresh)} rules"

    def reload_tls(self) -> tuple[bool, str]:
        """Read every TLS certificate, key and CA file again (SIGHUP): new handshakes use them,
        connections already open keep theirs; files that cannot be used are refused with a
        logged reason and their endpoint keeps its context."""
        endpoints = {f"listener {name}": tls for name, tls in self.listener_tls.items()}
        endpoints |= {f"issuer {name}": link.tls for name, link in self.links.items() if link.tls is not None}
        if isinstance(self.hsm, TcpHsm) and self.hsm.tls is not None:
            endpoints["hsm"] = self.hsm.tls
        return reload_endpoints(endpoints)

    def _read_routing(self) -> RoutingTable:
        """The config file's routing table, checked against the running links (in a thread)."""
        routing = load_config(self.config.source).routing
        named = routing.issuers | {e.fallback for e in routing.entries if e.fallback}
        unknown = named - set(self.links)
        if unknown:
            raise CardswitchError(f"routes name issuers without a running link: {', '.join(sorted(unknown))}")
        return routing

    # -- the business day ------------------------------------------------------------------

    def _recorded_business_date(self) -> datetime.date | None:
        rows = self.journal.read("SELECT value FROM properties WHERE name = 'business_date'")
        return datetime.date.fromisoformat(rows[0][0]) if rows else None

    def cut_over(self) -> datetime.date:
        """An early cutover (`admin cutover`): the next business date starts now, for every
        instance on the journal (the others follow within BUSINESS_DAY_POLL)."""
        ended = self.business.date
        date = self.business.cut_over()
        self._business_day_started("operator", ended)
        return date

    def _business_day_started(self, why: str, ended: datetime.date) -> None:
        """Record the new date, and write the settlement files of the day that `ended` once its
        last transactions (decided just before, here or at another instance) are in the journal."""
        self.journal.execute(
            "INSERT INTO properties (name, value) VALUES ('business_date', ?) ON CONFLICT (name)"
            " DO UPDATE SET value = excluded.value WHERE properties.value < excluded.value",
            (self.business.iso,))
        logs.event("business_day_started", business_date=self.business.iso, why=why)
        if self._background is not None:
            self._background.start_soon(self._write_settlement_files, ended)

    async def _write_settlement_files(self, date: datetime.date) -> None:
        await trio.sleep(SETTLEMENT_FILES_DELAY)
        directory = self.config.data_dir / SETTLEMENT_DIR
        try:
            written = await self.journal.commit(
                lambda connection: write_settlement_files(connection, date.isoformat(), directory))
        except Exception as exc:  # a full disk, a journal failing: `cardswitch settle --files` can do it again
            logs.warning("settlement_files_failed", business_date=date.isoformat(), error=type(exc).__name__)
            return
        logs.event("settlement_files_written", business_date=date.isoformat(), files=len(written),
                   directory=str(directory / date.isoformat()))

    async def _keep_business_day(self) -> None:
        """Move to the next business date at the cutover time, or when another instance on the
        journal cut over early."""
        while True:
            await trio.sleep(BUSINESS_DAY_POLL)
            known = None
            if self.journal.shared:
                try:
                    rows = await self.journal.commit(lambda connection: connection.execute(
                        "SELECT value FROM properties WHERE name = 'business_date'").fetchall())
                except Exception as exc:  # the journal is stalled or failing: the next look catches up
                    logs.warning("business_day_check_failed", error=type(exc).__name__)
                    continue
                known = datetime.date.fromisoformat(rows[0][0]) if rows else None
            now, ended = utc_now(), self.business.date
            if self.business.follow(now, known):
                scheduled = self.business.date == self.business.scheduled(now)
                self._business_day_started("scheduled" if scheduled else "another instance's cutover", ended)

    # -- what participants read (switch.core.context.SwitchView) ---------------------------

    async def _adopt_saf(self) -> None:
        """SAF items taken over from a dead instance: into this instance's forwarders."""
        logs.event("saf_adopted", items=self.saf.load())

    @property
    def over_capacity(self) -> bool:
        """More requests in flight than `max_in_flight` (this one included)."""
        return self.in_flight > self._max_in_flight

    # -- one transaction ---------------------------------------------------------------

    async def handle(self, request: Message, listener: ListenerConfig, connection: ConnectionInfo,
                     raw: bytes, deliver: Callable[[Message], None]) -> None:
        """Walk `request` through its pipeline (switch.core.pipeline), performing the effects
        its participants ask for, and hand the terminal's response to `deliver`, once: at once,
        or, when money may have moved, from the journal's committer once the outcome is
        committed (`_deliver`). Raises, without calling `deliver`, only for a bug or a
        cancellation. Requests run in the switch's nursery (switch.acquirer), so only a shutdown
        whose grace has run out cancels one; a terminal hanging up does not.

        A request that may already be at an issuer (its reversal journaled) and is cut short,
        by that shutdown or by a bug, keeps its `pending` row and its reversal: the next start
        reverses or completes it (switch.recovery), exactly as after a crash.

        `raw` is the request as the terminal sent it, which its MAC covers; a terminal that
        must send MACs gets its answer MACed under its TAK."""
        self.in_flight += 1  # until the answer is handed over: a graceful stop waits for it
        try:
            response, ctx = await self._respond(request, listener, connection, raw)
        except BaseException:
            self.in_flight -= 1
            raise
        queued = ctx.txn.trace if ctx.queued else None
        # Money may have moved: never an answer the journal could lose. On a shared journal, no
        # answer before its row is there for every instance (a reversal or retransmission sent
        # to another one finds it).
        if ctx.prepared or ctx.queued or self.journal.shared:
            self.journal.after_durable(partial(self._deliver, response, deliver, queued))
        else:
            self._deliver(response, deliver, queued)

    def _deliver(self, response: Message, deliver: Callable[[Message], None], queued: int | None) -> None:
        """The answer goes to the terminal; the advices it queued (`queued`: its trace) may go."""
        self.in_flight -= 1
        if queued is not None:
            self.saf.release(queued)
        deliver(response)

    async def _respond(self, request: Message, listener: ListenerConfig, connection: ConnectionInfo,
                       raw: bytes) -> tuple[Message, Context]:
        """The terminal's response, its outcome journaled (queued, not yet committed)."""
        started = trio.current_time()
        pan = card_pan(request)
        txn = self._new_txn(request, pan, started)
        opened_on = self.business.iso
        self.records.open(txn, request, listener.name, pan, listener.acquirer_id, opened_on)
        ctx = Context(request, txn, pan, listener.acquirer_id, self, connection, listener.known,
                      listener=listener, raw=raw)
        try:
            verdict = await self._run(ctx, listener)
        except BaseException as exc:
            if ctx.prepared:
                logs.warning("txn_left_for_recovery", trace=txn.trace, error=type(exc).__name__)
            else:
                why = "switch stopped while in flight" if isinstance(exc, trio.Cancelled) else "internal error"
                state = State.INTERRUPTED if isinstance(exc, trio.Cancelled) else State.FAILED
                self._conclude(ctx, Answer(RC.SYSTEM_ERROR, state, why), listener, started, opened_on)
                self.saf.withdraw(txn.trace)  # what they advise is not what the terminal got
            raise
        response = self._conclude(ctx, verdict, listener, started, opened_on)
        terminal = listener.terminals.get(txn.tid)
        if terminal is not None and terminal.mac and terminal.tak is not None and self.macs is not None:
            response = await self.macs.answer(response, listener.dialect, terminal.tak)
        return response, ctx

    async def _run(self, ctx: Context, listener: ListenerConfig) -> Answer | None:
        for participant in pipeline_for(ctx.txn.mti):
            decided = participant(ctx)
            if decided is None:
                continue
            if isinstance(decided, Answer):
                return decided
            verdict = await self._drive(decided, ctx, listener)  # a participant with effects to perform
            if verdict is not None:
                return verdict
        return None

    async def _drive(self, steps: Step, ctx: Context, listener: ListenerConfig) -> Answer | None:
        result: object = None
        while True:
            try:
                effect = steps.send(result)
            except StopIteration as done:
                return done.value
            result = await self._perform(effect, ctx, listener)

    def _conclude(self, ctx: Context, verdict: Answer | None, listener: ListenerConfig, started: float,
                  opened_on: str) -> Message:
        """The terminal's response from the verdict, journaled and logged; a pipeline that ended
        without one (a bug) still gives the row a final state and the terminal a 96."""
        if verdict is None:
            verdict = Answer(RC.SYSTEM_ERROR, State.FAILED, "internal error")
        request, txn = ctx.request, ctx.txn
        response = respond(request, verdict.code, verdict.base)
        if verdict.extra:
            response.fields.update(verdict.extra)
        response.fields.setdefault("15", self.business.field15)  # settles on today's business date
        txn.move_to(verdict.state)
        txn.response = retained_response(response)
        txn.rc = verdict.code
        txn.approval = response.fields.get("38")
        risk, counted = self._settle_risk(ctx)
        latency_ms = round((trio.current_time() - started) * 1000, 3)
        self.records.close(txn, latency_ms, verdict.reason, ctx.original_trace, risk, counted,
                           self.business.iso, opened_on)
        txn.forwarded = None  # what advices needed was built while the request ran
        self._finish(txn)
        log_txn(listener.name, request.mti, txn, ctx.pan, latency_ms, verdict.reason, risk)
        if self.metrics is not None:
            self.metrics.observe(txn, listener.name, latency_ms)
        return response

    def _settle_risk(self, ctx: Context) -> tuple[str | None, str | None]:
        """Tell the risk rules the outcome; returns what the journal keeps of them: every rule
        that spoke (declined or flagged), and the rules whose counts the request is in (so that
        a restart can rebuild them, `_replay_risk`). Logs an alert when card testing stops a
        terminal or merchant."""
        txn, found = ctx.txn, ctx.assessment
        unassessed_decline = (txn.rc in self.risk.testing_codes and txn.mti in AUTHORISATIONS
                              and ctx.prior is None)  # a retransmission's answer is its first's
        if found is None and not ctx.rate_hits and not unassessed_decline:
            return None, None  # nothing the rules said or count: most requests
        hits = list(ctx.rate_hits or ())
        counted: list[str] = []
        alerts: Sequence[Alert] = ()
        if found is not None:
            alerts = self.risk.settle(found, txn.rc or "", txn.seen)
            counted = found.counted
            hits += found.hits()
        elif unassessed_decline:
            facts = ctx.risk_facts or facts_of(ctx.request, ctx.pan, txn.pan_hash, None, txn.amount, ctx.connection_number)
            counted, alerts = self.risk.declined_unassessed(facts, txn.rc or "", txn.seen)
        for alert in alerts:
            logs.warning("risk_alert", rule=alert.rule, per=alert.per, key=mask_pan_like(alert.key),
                         distinct_cards=alert.cards, window_s=alert.window, cooldown_s=alert.cooldown,
                         trace=txn.trace)
        if hits and self.metrics is not None:
            self.metrics.risk_decided(hits)
        return "; ".join(hit.describe() for hit in hits) or None, ",".join(counted) or None

    def _finish(self, txn: Txn) -> None:
        txn.finished = True
        waiting = self._finishing.pop(txn.trace, None)
        if waiting is not None:
            waiting.set()

    def _new_txn(self, request: Message, pan: str | None, now: float) -> Txn:
        fields = request.fields
        amount = fields.get("4", "")
        return Txn(trace=next(self._trace), mti=message_class(request.mti), tid=fields.get("41", ""),
                   stan=fields.get("11", ""), transmitted=fields.get("7", ""), rrn=fields.get("37"),
                   amount=int(amount) if amount.isascii() and amount.isdigit() else 0,
                   pan_hash=self.vault.pan_hash(pan) if pan else None, created=time.time(), seen=now)

    # -- the effects participants ask for ----------------------------------------------

    async def _perform(self, effect: Effect, ctx: Context, listener: ListenerConfig) -> object:
        if type(effect) is Exchange:
            return await self._exchange(effect, ctx)
        if type(effect) is VerifyMac:
            assert self.macs is not None  # a terminal with mac = true names a TAK: the config has an HSM
            return await self.macs.verify(effect.key, effect.data, effect.mac)
        if type(effect) is CheckCard:
            link: IssuerLink = effect.link
            return await self.security.check(ctx.request, listener, link.config)
        if type(effect) is Enqueue:
            ctx.queued = True
            await self.saf.enqueue(effect.issuer, effect.trace, effect.kind, effect.message)
            return None
        if type(effect) is WaitFor:
            with trio.move_on_after(self._longest_timeout + 1):
                await self._wait_finished(effect.txn)
            return None
        if type(effect) is Claim:
            return await self._claim(effect.txn)
        if type(effect) is JournalTotals:
            matching = {"tid" if effect.by == "terminal" else "acquirer": effect.key}
            if effect.currency is not None:
                matching["currency"] = effect.currency
            return await self.journal.commit(
                lambda connection: totals_of(movements(connection, effect.business_date.isoformat(), **matching)))
        if type(effect) is ReserveStandIn:
            return await self.journal.commit(partial(
                self.records.reserve_stand_in, issuer=effect.issuer, pan_hash=effect.pan_hash, amount=effect.amount,
                limits=effect.limits))
        if type(effect) is ReleaseStandIn:
            self.records.release_stand_in(effect.issuer, effect.pan_hash, effect.amount, effect.whole,
                                          effect.approved_at)
            return None
        if type(effect) is FindOriginal:
            return await self.records.find_original(effect.tid, effect.mti, effect.stan, effect.transmitted,
                                                    trio.current_time())
        if type(effect) is FindByRrn:
            return await self.records.find_by_rrn(effect.rrn, effect.tid, effect.amount, trio.current_time())
        if type(effect) is JournalReversed:
            self.records.reversed(effect.original)
            return None
        if type(effect) is Prepare:
            return await self._prepare(ctx, effect.reversal, effect.original, effect.amount)
        if type(effect) is Shed:
            self._count_shed()
            return None
        if type(effect) is Warn:
            logs.warning(effect.event, listener=listener.name, **effect.fields)
            return None
        raise TypeError(f"no performer for {type(effect).__name__}")

    async def _exchange(self, effect: Exchange, ctx: Context) -> Message | LinkFailure:
        """Send on the issuer's link, unless it is down or already holds its issuer's
        `max_in_flight` requests (saturated). The reversal that undoes the request is journaled
        before it leaves (see `_prepare`): the link sends it from the journal's committer once
        that is committed, while this task waits for the answer."""
        link: IssuerLink = effect.link
        sent, txn = effect.message, ctx.txn
        if effect.own:
            txn.sent_as = OriginalData.text_of(sent)  # a stand-in's reversal needs a name too
            txn.forwarded = sent  # advices are built from it (without its card data)
            bound = link.config.max_in_flight
            if bound is not None and link.in_flight >= bound:
                self.saturated[link.name] += 1
                return LinkFailure.SATURATED
        if not link.up:
            return LinkFailure.UNAVAILABLE
        if effect.reversal is not None:
            self._journal_reversal(ctx, self.vault.seal(effect.reversal.fields))
        # A reversal row queued and not yet committed (this request's, or a 0400's from its
        # Prepare; a shared journal's Prepare commits before it returns): the sending waits for it.
        queued_row = effect.reversal is not None or (ctx.prepared and not self.journal.shared)
        after = partial(self._send_when_durable, ctx) if queued_row else None
        ctx.asked = trio.current_time()
        try:
            return await link.exchange(sent, after)
        except LinkUnavailable:
            # Not sent; but once journaled as on its way it is reversed all the same, so that
            # the journal's word (sent_at) is the one recovery and `journal check` go by.
            return LinkFailure.UNAVAILABLE if effect.reversal is None else LinkFailure.DROPPED
        except LinkMacFailed:
            return LinkFailure.MAC_FAILED
        except LinkDropped:
            return LinkFailure.DROPPED
        except LinkTimeout:
            self._remember_timeout(link, sent, txn)
            return LinkFailure.TIMED_OUT
        except KeyInUse:
            return LinkFailure.KEY_IN_USE
        finally:
            if effect.own:
                txn.issuer_ms = round((trio.current_time() - ctx.asked) * 1000, 3)

    def _send_when_durable(self, ctx: Context, send: Callable[[], None]) -> None:
        """The link's sending of a request once its reversal is committed; the issuer's time
        (`issuer_ms`) counts from then."""
        def sending() -> None:
            ctx.asked = trio.current_time()
            send()
        self.journal.after_durable(sending)

    async def _prepare(self, ctx: Context, reversal: Message, original: Txn | None = None,
                       amount: int | None = None) -> bool:
        """Journal the 0420 that undoes what is about to reach an issuer (sealed), and for a
        reversal its original and amount: recovery after a crash reverses or completes whatever
        still has one (switch.recovery). On a shared journal a reversal first takes its original
        in the same transaction, committed before this returns; False when another instance's
        reversal had. On SQLite it is only queued: what may then reach an issuer waits for its
        commit (an exchange's gate, a SAF item's own commit), and so does the answer."""
        sealed = self.vault.seal(reversal.fields)
        if original is not None and amount is not None and self.journal.shared:
            self.records.write_opened(ctx.txn)  # the operation below updates it
            taken = await self.journal.commit(
                partial(self.records.prepare_reversal, txn=ctx.txn, reversal=sealed, original=original,
                        reversed_amount=amount))
            ctx.prepared = taken
            return taken
        self._journal_reversal(ctx, sealed, original, amount)
        return True

    def _journal_reversal(self, ctx: Context, sealed: bytes, original: Txn | None = None,
                          amount: int | None = None) -> None:
        """Queue the request's row with its sealed reversal: what `_prepare` waits for, and what
        the link's sending waits for (`_send_when_durable`)."""
        ctx.prepared = True
        self.records.prepared(ctx.txn, sealed, original.trace if original else None, amount)

    async def _claim(self, txn: Txn) -> Txn | None:
        """The journal's word on whether `txn` is the first request with its keys (shared journal)."""
        horizon = time.time() - self.config.duplicate_window
        self.records.write_opened(txn)  # another instance's retransmission must find its row
        row = await self.journal.commit(partial(self.records.claim, txn=txn, horizon=horizon))
        if row is None:
            return None
        prior = txn_from_row(row, trio.current_time())
        prior.remote = True
        return prior

    async def _wait_finished(self, txn: Txn) -> None:
        """Until `txn` (an original, or the first transmission of a retransmission) is finished;
        one another instance runs is looked up in the journal until it is."""
        if txn.finished:
            await trio.lowlevel.checkpoint()
            return
        if txn.remote:
            while not await self.records.reload(txn):
                await trio.sleep(REMOTE_POLL)
            return
        await self._finishing.setdefault(txn.trace, trio.Event()).wait()

    def _count_shed(self) -> None:
        if not self.overloaded:
            self._overload_started()
        self.shed += 1

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

    # -- late responses ----------------------------------------------------------------

    def _remember_timeout(self, link: IssuerLink, sent: Message, txn: Txn) -> None:
        """Keep, for TIMED_OUT_MEMORY seconds of the switch's clock, which transaction a late
        answer on `link` belongs to (its reversal is already queued: the journal notes the
        late code, `journal check` looks for the reversal)."""
        now = trio.current_time()
        self._timed_out[(link.name, link.request_key(sent))] = (txn.trace, now)
        horizon = now - TIMED_OUT_MEMORY
        while self._timed_out:
            key, (_, remembered) = next(iter(self._timed_out.items()))
            if remembered >= horizon:
                break
            del self._timed_out[key]

    def _unmatched_response(self, issuer: str, key: tuple[str, ...], response: Message) -> None:
        """A response nobody waits for. A late answer to a timed-out request is noted (the
        request was reversed when it timed out); an approval the switch cannot place (an
        unknown STAN) is reversed at the issuer (0420 via SAF) with an alert; anything else is
        logged."""
        trace, _ = self._timed_out.pop((issuer, key), (None, None))
        rc = response.get("39")
        logs.warning("issuer_response_unmatched", issuer=issuer, mti=response.mti, stan=response.get("11"),
                     tid=response.get("41"), rc=rc, late_for_trace=trace)
        if trace is not None:
            self.records.late_response(trace, rc)
            return
        reversal = unknown_approval_reversal(response)
        if reversal is not None and self._background is not None:
            logs.warning("unknown_approval_reversed", issuer=issuer, mti=response.mti, stan=response.get("11"),
                         tid=response.get("41"))
            self._background.start_soon(self._queue_unknown_approval_reversal, issuer, None, reversal)

    async def _queue_unknown_approval_reversal(self, issuer: str, trace: int | None, advice: Message) -> None:
        """Runs in the switch's core nursery, so a journal that cannot write costs a logged
        warning, never the switch."""
        try:
            await self.saf.enqueue(issuer, trace, "unknown_approval_reversal", advice)
        except Exception as exc:
            logs.warning("unknown_approval_reversal_not_queued", issuer=issuer, trace=trace, error=type(exc).__name__)
