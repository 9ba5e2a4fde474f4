"""Prometheus metrics: `GET /metrics` on an opt-in port (`[switch] metrics_port`).

The port binds 127.0.0.1 unless `metrics_host` says otherwise: it has no authentication, so it is
loopback-only by default. It is served by a small Trio handler (one request per connection,
HTTP/1.0, `generate_latest` of the switch's own registry), so the event loop is never blocked on
it and several switches in one process never share a registry.

What is counted on the transaction path is counted in one place, `Switch._conclude`, through
`SwitchMetrics.observe`: plain counts (a dictionary per label tuple, histogram buckets as lists),
under 1 us a transaction where prometheus_client's Counter and Histogram objects cost over 3 us
(docs/metrics.md). Everything else (in flight, shed, links, store-and-forward, loop lag, journal)
is read from the switch's own state when scraped (`SwitchCollector`), so the hot path pays
nothing for it. The counts are only touched on the event loop (the scrape runs there too), so
they need no lock.

No label carries card data. Labels come only from bounded sets: `mti` (the request classes the
switch knows, else "other"), `rc` (two letters or digits, else "other"), `issuer` and `listener`
(names from the config; "none" when no issuer was involved). docs/metrics.md lists every metric.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import partial
from typing import TYPE_CHECKING, Iterable, Iterator

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from switch import logs
from switch.core.messages import FORWARDED_MTIS, ORIGINAL_MTI
from switch.core.risk.engine import Hit
from switch.errors import ConfigError

if TYPE_CHECKING:
    from switch.core.txn import Txn
    from switch.service import Switch

# The request classes a transaction can be counted under; anything else (an undecodable or
# misaligned frame may put card data where the MTI goes) is "other".
KNOWN_MTIS = frozenset(FORWARDED_MTIS | set(ORIGINAL_MTI.values()) | {"0100", "0200", "0400", "0800", "0500"})
NO_ISSUER = "none"
OTHER = "other"

# Seconds. Inside the switch a transaction takes a few hundred microseconds without an issuer,
# tens of milliseconds with one; the issuer round trip goes up to its timeout.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ISSUER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

MAX_REQUEST = 8192  # bytes of an HTTP request head; more is refused
REQUEST_TIMEOUT = 5.0  # seconds for a scraper to send its request head


def _label_rc(rc: str | None) -> str:
    return rc if rc is not None and len(rc) == 2 and rc.isascii() and rc.isalnum() else OTHER


class Buckets:
    """A histogram's counts, kept as plain numbers: one list index and one add per observation
    (prometheus_client's Histogram takes two locks and walks its bounds: about 1 us each)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def family_samples(self) -> tuple[list[tuple[str, float]], float]:
        cumulative, total = [], 0
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts):
            total += count
            cumulative.append((bound, float(total)))
        return cumulative, self.sum


class SwitchMetrics:
    """The switch's registry. Per-transaction figures are plain counts updated by `observe` (one
    dictionary update and two bisections: see docs/metrics.md for what prometheus_client's own
    Counter and Histogram cost instead) and exposed, like everything else, by the collector."""

    def __init__(self, switch: Switch):
        self.registry = CollectorRegistry(auto_describe=False)
        # (mti, rc, issuer, listener) -> transactions concluded; the label values are made safe
        # when collected (mti is bounded here already: see KNOWN_MTIS)
        self.counted: dict[tuple[str, str | None, str | None, str], int] = {}
        self.duration = Buckets(DURATION_BUCKETS)
        self.issuer_round_trip: dict[str, Buckets] = {}
        self.risk_decisions: dict[tuple[str, str], int] = {}  # (rule, action) -> requests
        self.collector = SwitchCollector(switch, self)
        self.registry.register(self.collector)

    def observe(self, txn: Txn, listener: str, latency_ms: float) -> None:
        """One concluded transaction (Switch._conclude)."""
        key = (txn.mti if txn.mti in KNOWN_MTIS else OTHER, txn.rc, txn.issuer, listener)
        counted = self.counted
        counted[key] = counted.get(key, 0) + 1
        seconds = latency_ms / 1000
        duration = self.duration
        duration.counts[bisect_left(duration.bounds, seconds)] += 1
        duration.sum += seconds
        issuer_ms = txn.issuer_ms
        if issuer_ms is not None and txn.issuer is not None:
            trip = self.issuer_round_trip.get(txn.issuer)
            if trip is None:
                trip = self.issuer_round_trip[txn.issuer] = Buckets(ISSUER_BUCKETS)
            seconds = issuer_ms / 1000
            trip.counts[bisect_left(trip.bounds, seconds)] += 1
            trip.sum += seconds

    def risk_decided(self, hits: Iterable[Hit]) -> None:
        """Risk rules that declined or flagged a request (only called when some did)."""
        decisions = self.risk_decisions
        for hit in hits:
            decisions[(hit.rule, hit.action)] = decisions.get((hit.rule, hit.action), 0) + 1

    def scrape(self) -> bytes:
        return generate_latest(self.registry)


class SwitchCollector(Collector):
    """What the switch already knows, read when scraped."""

    def __init__(self, switch: Switch, metrics: SwitchMetrics):
        self.switch = switch
        self.metrics = metrics
        # issuer -> store-and-forward items parked for an operator, as the journal said at the
        # last scrape (read in a thread before each scrape: `refresh`)
        self.parked: dict[str, int] = {}

    async def refresh(self) -> None:
        names, owner = list(self.switch.links), self.switch.instance

        def count(connection) -> dict[str, int]:
            return {name: connection.execute("SELECT count(*) FROM saf WHERE issuer = ? AND owner = ?"
                                             " AND status = 'parked'", (name, owner)).fetchone()[0] for name in names}

        try:
            self.parked = await self.switch.journal.commit(count)
        except Exception as exc:  # a journal being migrated, locked: keep the last figures
            logs.warning("metrics_parked_unread", error=type(exc).__name__)

    def collect(self) -> Iterator[Metric]:
        yield from self._transactions()
        yield from self._state()

    def _transactions(self) -> Iterator[Metric]:
        metrics = self.metrics
        counted = CounterMetricFamily(
            "cardswitch_transactions", "Transactions answered, by request class, response code, issuer and listener",
            labels=("mti", "rc", "issuer", "listener"))
        totals: dict[tuple[str, str, str, str], int] = {}
        for (mti, rc, issuer, listener), count in list(metrics.counted.items()):
            labels = (mti, _label_rc(rc), issuer or NO_ISSUER, listener)
            totals[labels] = totals.get(labels, 0) + count
        for labels, count in totals.items():
            counted.add_metric(labels, count)
        yield counted
        duration = HistogramMetricFamily(
            "cardswitch_transaction_duration_seconds",
            "Time inside the switch from a decoded request to its response (issuer round trip included)")
        buckets, total = metrics.duration.family_samples()
        duration.add_metric((), buckets, total)
        yield duration
        trip = HistogramMetricFamily(
            "cardswitch_issuer_round_trip_seconds",
            "Time from sending a request to an issuer to its answer (or the timeout, or the link dropping)",
            labels=("issuer",))
        for issuer, histogram in list(metrics.issuer_round_trip.items()):
            buckets, total = histogram.family_samples()
            trip.add_metric((issuer,), buckets, total)
        yield trip

    def _state(self) -> Iterator[Metric]:
        switch = self.switch
        yield GaugeMetricFamily("cardswitch_in_flight", "Requests being processed now", switch.in_flight)
        yield GaugeMetricFamily("cardswitch_max_in_flight", "Requests processed at once before shedding",
                                switch.config.max_in_flight)
        yield GaugeMetricFamily("cardswitch_overloaded", "1 while the switch sheds load", int(switch.overloaded))
        yield CounterMetricFamily("cardswitch_shed", "Requests answered 91 because the switch was overloaded",
                                  switch.shed)
        yield GaugeMetricFamily("cardswitch_routes", "Entries in the BIN routing table", len(switch.routing))
        decisions = CounterMetricFamily("cardswitch_risk_decisions", "Requests a risk rule declined or flagged",
                                        labels=("rule", "action"))
        for (rule, action), count in list(self.metrics.risk_decisions.items()):
            decisions.add_metric((rule, action), count)
        yield decisions
        yield GaugeMetricFamily("cardswitch_risk_memory_keys",
                                "Cards, terminals, merchants and connections the risk rules' counts hold now",
                                switch.risk.held())
        up = GaugeMetricFamily("cardswitch_issuer_link_up", "1 while the issuer link is connected and signed on",
                               labels=("issuer",))
        in_flight = GaugeMetricFamily("cardswitch_issuer_link_in_flight", "Requests waiting for the issuer's answer",
                                      labels=("issuer",))
        unmatched = CounterMetricFamily("cardswitch_issuer_link_unmatched_responses",
                                        "Issuer messages matching no request in flight (late or unsolicited)",
                                        labels=("issuer",))
        saturated = CounterMetricFamily("cardswitch_issuer_link_saturated",
                                        "Requests refused because the link held its max_in_flight",
                                        labels=("issuer",))
        backlog = GaugeMetricFamily("cardswitch_saf_backlog", "Store-and-forward advices waiting for the issuer",
                                    labels=("issuer",))
        parked = GaugeMetricFamily("cardswitch_saf_parked",
                                   "Store-and-forward advices parked for an operator after retry_limit attempts",
                                   labels=("issuer",))
        for name, link in switch.links.items():
            up.add_metric((name,), int(link.up))
            in_flight.add_metric((name,), link.in_flight)
            unmatched.add_metric((name,), link.unmatched)
            saturated.add_metric((name,), switch.saturated[name])
            backlog.add_metric((name,), switch.saf.pending(name))
            parked.add_metric((name,), self.parked.get(name, 0))
        yield from (up, in_flight, unmatched, saturated, backlog, parked)
        lag = switch.loop_lag.status()
        yield GaugeMetricFamily("cardswitch_event_loop_lag_worst_seconds",
                                "Worst lag of the event loop over the last one to two minutes", lag["worst_ms"] / 1000)
        yield CounterMetricFamily("cardswitch_event_loop_stalls", "Event loop lags over 50 ms", lag["stalls"])
        yield CounterMetricFamily("cardswitch_journal_batches", "Journal batches committed", switch.journal.batches)
        yield GaugeMetricFamily("cardswitch_journal_stalled",
                                "1 while a journal batch waits to be retried (database locked)",
                                int(switch.journal.stalled))


async def serve_metrics(metrics: SwitchMetrics, host: str, port: int, *,
                        task_status=trio.TASK_STATUS_IGNORED) -> None:
    """`GET /metrics` on host:port; reports the bound port via task_status."""
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:  # port in use, unknown host: one line, exit 2
        raise ConfigError("config", "switch.metrics_port",
                          f"a free address to serve metrics on; {host}:{port}: {exc.strerror or exc}") from None
    bound = listeners[0].socket.getsockname()[1]
    logs.event("metrics_up", host=host, port=bound)
    task_status.started(bound)
    await trio.serve_listeners(partial(_scrape, metrics), listeners)


async def _scrape(metrics: SwitchMetrics, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            head = b""
            with trio.move_on_after(REQUEST_TIMEOUT):
                while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) <= MAX_REQUEST:
                    data = await stream.receive_some(4096)
                    if not data:
                        break
                    head += data
            line = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
            if len(line) < 2 or len(head) > MAX_REQUEST:
                await stream.send_all(_response(400, b"bad request\n"))
            elif line[0] not in (b"GET", b"HEAD"):
                await stream.send_all(_response(405, b"GET /metrics\n"))
            elif line[1].split(b"?", 1)[0] not in (b"/metrics", b"/"):
                await stream.send_all(_response(404, b"GET /metrics\n"))
            else:
                await metrics.collector.refresh()
                body = metrics.scrape()
                await stream.send_all(_response(200, b"" if line[0] == b"HEAD" else body, CONTENT_TYPE_LATEST,
                                                length=len(body)))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              length: int | None = None) -> bytes:
    head = (f"HTTP/1.0 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n")
    return head.encode() + body

