"""The load generator: N terminal connections driving a switch, open or closed loop.

Open loop issues operations on a fixed schedule (offered TPS) whatever the switch does, which is
how latency at a given load must be measured; closed loop keeps `in_flight` operations per
connection busy back to back, which finds the maximum throughput. Every request is accounted for:
answered (latency recorded from the moment it is sent), or lost — no response within `timeout`,
or still unanswered `grace` seconds after the last request was issued, when the run is cut.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import secrets
from typing import Callable

import attrs
import trio

from emulators.terminal import PinKey, Terminal, TerminalError, open_terminal
from switch.tls import TlsEndpoint
from switch.wire.message import Message
from tools.load.histogram import Histogram
from tools.load.mix import Mix, Operation


@attrs.frozen
class LoadSettings:
    host: str
    port: int
    dialect: str = "iso87-binary"
    connections: int = 4
    tps: float | None = None  # offered load (open loop); None: closed loop
    in_flight: int = 1  # closed loop: operations outstanding per connection
    duration: float | None = 10.0
    count: int | None = None  # operations; with duration too, whichever ends first
    timeout: float = 10.0
    grace: float = 5.0
    tid_prefix: str = "L"
    first_stan: int | None = None  # None: a random first STAN per terminal (see LoadRun.run)
    pin_key: PinKey | None = None  # for PIN purchases
    tls: TlsEndpoint | None = None  # connect over TLS


@attrs.define
class Results:
    """What a run observed; `report.summary()` turns it into figures."""

    settings: LoadSettings
    notes: list[str]
    started: float = 0.0
    issued_until: float = 0.0
    last_answer: float = 0.0
    sent: int = 0
    answered: int = 0
    lost: int = 0
    late: int = 0  # responses that arrived after their request was given up
    latency: Histogram = attrs.Factory(Histogram)
    by_kind: dict[str, Histogram] = attrs.Factory(lambda: collections.defaultdict(Histogram))
    codes: collections.Counter = attrs.Factory(collections.Counter)
    kind_codes: dict[str, collections.Counter] = attrs.Factory(lambda: collections.defaultdict(collections.Counter))
    errors: collections.Counter = attrs.Factory(collections.Counter)
    per_second: dict[int, Histogram] = attrs.Factory(lambda: collections.defaultdict(Histogram))

    @property
    def elapsed(self) -> float:
        return max(self.issued_until, self.last_answer) - self.started

    @property
    def outstanding(self) -> int:
        return self.sent - self.answered - self.lost


def _error_kind(exc: TerminalError) -> str:
    text = str(exc)
    if text.startswith("no response"):
        return "timeout"
    if text.startswith("connection closed"):
        return "connection closed before the response"
    return text.split(":")[0]


class LoadRun:
    def __init__(self, settings: LoadSettings, mix: Mix,
                 progress: Callable[[Results], None] | None = None, progress_interval: float = 1.0):
        self.settings = settings
        self.mix = mix
        self.progress = progress
        self.progress_interval = progress_interval
        self.results = Results(settings, list(mix.notes))
        self._issued = 0

    async def run(self) -> Results:
        # What earlier runs in this process left (bench phases, their histograms) is frozen, so
        # the collector's passes over it cannot show up as switch latency in this run.
        gc.freeze()
        settings = self.settings
        # Every run uses the same terminal IDs, so each terminal starts its STANs at a random
        # point, as `cardswitch terminal` does: restarting at 000001 would make a run right after
        # another send keys the switch's duplicate window still holds (94s, or old answers).
        async with contextlib.AsyncExitStack() as stack:
            terminals = [await stack.enter_async_context(open_terminal(
                settings.host, settings.port, dialect=settings.dialect,
                tid=f"{settings.tid_prefix}{index:07d}"[-8:], timeout=settings.timeout, pin_key=settings.pin_key,
                first_stan=settings.first_stan or secrets.randbelow(999_999) + 1, tls=settings.tls))
                for index in range(settings.connections)]
            async with trio.open_nursery() as nursery:
                if self.progress is not None:
                    nursery.start_soon(self._report_progress, self.progress)
                await self._drive(terminals)
                nursery.cancel_scope.cancel()
            self.results.late = sum(len(terminal.unmatched) for terminal in terminals)
        return self.results

    async def _drive(self, terminals: list[Terminal]) -> None:
        self.results.started = trio.current_time()
        self.results.last_answer = self.results.started
        with trio.CancelScope() as operations_scope:
            async with trio.open_nursery() as operations:
                tps = self.settings.tps
                if tps is None:
                    await self._closed_loop(operations, terminals)
                else:
                    await self._open_loop(operations, terminals, tps)
                self.results.issued_until = trio.current_time()
                operations_scope.deadline = self.results.issued_until + self.settings.grace
        if operations_scope.cancelled_caught:
            self.results.notes.append(f"run cut {self.settings.grace} s after the last request")

    def _more(self, now: float) -> bool:
        settings = self.settings
        if settings.count is not None and self._issued >= settings.count:
            return False
        return settings.duration is None or now < self.results.started + settings.duration

    async def _open_loop(self, operations: trio.Nursery, terminals: list[Terminal], tps: float) -> None:
        """Issue at the offered rate, on schedule whatever the answers do. Every request whose
        time has come is issued after one wake-up, so the generator's own sleeps do not cost
        one trip through the event loop per request."""
        interval = 1.0 / tps
        start = self.results.started
        while True:
            due = start + self._issued * interval
            if not self._more(due):
                return
            await trio.sleep_until(due)
            now = trio.current_time()
            while due <= now and self._more(due):
                operations.start_soon(self._operation, terminals[self._issued % len(terminals)], self.mix.next())
                self._issued += 1
                due = start + self._issued * interval

    async def _closed_loop(self, operations: trio.Nursery, terminals: list[Terminal]) -> None:
        finished = trio.Event()

        async def worker(terminal: Terminal) -> None:
            while self._more(trio.current_time()):
                self._issued += 1
                await self._operation(terminal, self.mix.next())
            finished.set()

        for terminal in terminals:
            for _ in range(self.settings.in_flight):
                operations.start_soon(worker, terminal)
        await finished.wait()  # the first worker to stop means issuing is over

    async def _operation(self, terminal: Terminal, operation: Operation) -> None:
        card = operation.card
        kind = operation.kind
        entered_pin = card.pin if kind == "pin" and self.settings.pin_key is not None else None
        request = terminal.card_request("0200", pan=card.pan, expiry=card.expiry, amount=operation.amount,
                                        pin=entered_pin)
        response = await self._request(terminal, request, "purchase" if kind == "reversal" else kind)
        if kind == "reversal" and response is not None and response.get("39") == "00":
            await self._request(terminal, terminal.reversal_of(request), "reversal")

    async def _request(self, terminal: Terminal, request: Message, kind: str) -> Message | None:
        results = self.results
        results.sent += 1
        sent_at = trio.current_time()
        response = None
        try:
            response = await terminal.send(request)
        except TerminalError as exc:
            results.errors[_error_kind(exc)] += 1
        finally:
            if response is None:
                results.lost += 1
        if response is None:
            return None
        now = trio.current_time()
        latency_us = int((now - sent_at) * 1_000_000)
        code = response.get("39", "--")
        results.answered += 1
        results.last_answer = now
        results.latency.record(latency_us)
        results.by_kind[kind].record(latency_us)
        results.per_second[int(sent_at - results.started)].record(latency_us)
        results.codes[code] += 1
        results.kind_codes[kind][code] += 1
        return response

    async def _report_progress(self, progress: Callable[[Results], None]) -> None:
        while True:
            await trio.sleep(self.progress_interval)
            progress(self.results)
