"""The Trio part of replay: one connection per captured connection, requests sent in order.

Each request waits for the answers its terminal had already received when it was captured (see
plan), and with a speed factor also for its captured moment scaled by that factor; then it is
rewritten, sent, and its answer matched by (response MTI, field 11, field 41) like a terminal
does. All connections run at once, as they did when captured.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Callable

import attrs
import trio

from switch.core.matcher import Matcher
from switch.errors import CardswitchError
from switch.tls import HandshakeFailed, TlsEndpoint
from switch.wire.dialect import Dialect, MessageDecodeError, MessageEncodeError
from switch.wire.framing import FramingError
from switch.wire.message import Message
from tools.replay.compare import DEFAULT_IGNORE, FieldDiff, compare
from tools.replay.plan import Exchange, Plan
from tools.replay.rewrite import Rewriter, map_back
from tools.replay.rules import Rule

MATCHED, MISMATCHED, UNANSWERED = "matched", "mismatched", "unanswered"


class ReplayError(CardswitchError):
    """Replay cannot run at all (the target is unreachable)."""


@attrs.frozen
class ReplayOptions:
    host: str
    port: int
    dialect: Dialect | None = None  # the target's; default: each exchange's captured dialect
    speed: float | None = None  # None: as fast as causality allows; 1.0: original timing
    timeout: float = 10.0
    ignore: frozenset[str] = DEFAULT_IGNORE
    rules: tuple[Rule, ...] = ()
    tls: TlsEndpoint | None = None  # connect over TLS


@attrs.frozen
class Result:
    exchange: Exchange
    status: str
    diffs: tuple[FieldDiff, ...] = ()
    note: str = ""
    seconds: float = 0.0


def judge(exchange: Exchange, answer: Message, options: ReplayOptions) -> Result:
    """Compare an answer (already mapped back) with the capture and the rules."""
    diffs = compare(exchange.expected, answer, options.ignore) if exchange.expected is not None else []
    diffs += [diff for rule in options.rules if rule.applies(exchange.request)
              for diff in [rule.check(answer)] if diff is not None]
    note = "" if exchange.expected is not None else "no answer in the capture; rules only"
    return Result(exchange, MISMATCHED if diffs else MATCHED, tuple(diffs), note)


class _Connection:
    """One replayed connection: a reader that routes answers to whoever waits for them."""

    def __init__(self, stream: trio.abc.Stream, dialect: Dialect):
        self.stream = stream
        self.dialect = dialect
        # Answers are matched by (MTI, field 11, field 41), like a terminal; a capture may hold
        # the same request twice (a retransmission), answered oldest first.
        self.waiting: Matcher[trio.MemorySendChannel[Message]] = Matcher(timeout=None, assign_stan=False,
                                                                           repeats=True)
        self.lost = ""

    async def read(self) -> None:
        framer = self.dialect.framer(0xFFFF)
        try:
            while data := await self.stream.receive_some(65536):
                for frame in framer.feed(bytes(data)):
                    answer = self.dialect.decode(frame.payload)
                    _, send = self.waiting.match(answer)
                    if send is not None:
                        send.send_nowait(answer)
            self.lost = "connection closed by the target"
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.lost = "connection lost"
        except (FramingError, MessageDecodeError) as exc:
            self.lost = f"unreadable answer: {exc}"
        for send in self.waiting.drain():
            send.close()


async def replay(plan: Plan, options: ReplayOptions, on_result: Callable[[Result], None] = lambda r: None) -> list[Result]:
    results: list[Result] = []
    done = {e.number: trio.Event() for e in plan.exchanges}
    rewriter = Rewriter()

    def finish(result: Result) -> None:
        results.append(result)
        on_result(result)
        done[result.exchange.number].set()

    async with AsyncExitStack() as streams:
        # Connect everything first: an unreachable target is one clear error before any traffic.
        connections = []
        for exchanges in plan.conversations.values():
            stream = await streams.enter_async_context(await _connect(options))
            connections.append((_Connection(stream, options.dialect or exchanges[0].dialect), exchanges))
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for connection, exchanges in connections:
                nursery.start_soon(_replay_connection, connection, exchanges, plan.start, started, options,
                                   rewriter, done, finish)
    return sorted(results, key=lambda r: r.exchange.number)


async def _connect(options: ReplayOptions) -> trio.abc.Stream:
    try:
        stream = await trio.open_tcp_stream(options.host, options.port)
    except OSError as exc:
        raise ReplayError(f"cannot connect to {options.host}:{options.port}: {exc.strerror or exc}") from None
    if options.tls is None:
        return stream
    try:
        return await options.tls.secure(stream, options.timeout, options.host)
    except HandshakeFailed as exc:
        raise ReplayError(f"TLS handshake with {options.host}:{options.port} failed: {exc.reason}") from None


async def _replay_connection(connection: _Connection, exchanges: list[Exchange], captured_start: float,
                             started: float, options: ReplayOptions, rewriter: Rewriter,
                             done: dict[int, trio.Event], finish: Callable[[Result], None]) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.read)
        async with trio.open_nursery() as answers:
            for exchange in exchanges:
                for number in exchange.waits_for:
                    await done[number].wait()
                if options.speed is not None:
                    await trio.sleep_until(started + (exchange.time - captured_start) / options.speed)
                await _send(connection, exchange, options, rewriter, answers, finish)
        nursery.cancel_scope.cancel()


async def _send(connection: _Connection, exchange: Exchange, options: ReplayOptions,
                rewriter: Rewriter, answers: trio.Nursery, finish: Callable[[Result], None]) -> None:
    request, changes = rewriter.rewrite(exchange.request)
    send, receive = trio.open_memory_channel[Message](1)
    sent_at = trio.current_time()
    try:
        data = connection.dialect.frame(request, exchange.header)
    except (MessageEncodeError, FramingError) as exc:
        return finish(Result(exchange, UNANSWERED, note=f"not sent: {exc}"))
    if connection.lost:
        return finish(Result(exchange, UNANSWERED, note=f"not sent: {connection.lost}"))
    key = connection.waiting.park(request, send)
    try:
        await connection.stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        connection.waiting.forget(key, send)
        return finish(Result(exchange, UNANSWERED, note="not sent: connection lost"))

    async def await_answer() -> None:
        with trio.move_on_after(options.timeout):
            try:
                answer = await receive.receive()
            except trio.EndOfChannel:
                return finish(Result(exchange, UNANSWERED, note=connection.lost, seconds=trio.current_time() - sent_at))
            result = judge(exchange, map_back(answer, changes), options)
            return finish(attrs.evolve(result, seconds=trio.current_time() - sent_at))
        connection.waiting.forget(key, send)
        finish(Result(exchange, UNANSWERED, note=f"no answer within {options.timeout:g} s", seconds=options.timeout))

    answers.start_soon(await_answer)
