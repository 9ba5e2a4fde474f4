"""Issuer links: one persistent outbound connection per issuer, many requests in flight.

The link connects, keeps the connection, and reconnects with capped exponential backoff. A
request is written by the link's single writer task and parked under a match key (by default
response-class MTI + field 11 + field 41, as jPOS QMUX does) until the reader finds its answer.
The link assigns its own field 11 so keys never collide across terminals; the caller restores
the terminal's values from its own copy of the request.

A response that matches nothing (late, or unsolicited) is logged, never dropped silently; a
network-management request from the issuer (echo) is answered.
"""

from __future__ import annotations

import collections
import datetime
import itertools
from typing import Callable

import outcome
import trio

from switch import logs
from switch.config import IssuerConfig
from switch.core.codes import RC
from switch.streams import Connection
from switch.wire.dialect import MessageDecodeError, MessageEncodeError
from switch.wire.framing import FramingError, reply_tpdu
from switch.wire.message import Message, is_response, response_mti

# Frames waiting for the socket before requests are refused as "link down". Terminals bound
# their own requests in flight, so this is reached only when the issuer stops reading.
SEND_QUEUE = 65536


class LinkUnavailable(Exception):
    """The issuer is not connected: answer 91 (or stand in) at once."""


class LinkTimeout(Exception):
    """The issuer did not answer within its timeout."""


class MatchKeyInUse(Exception):
    """Another request with the same match key is still waiting for its answer (possible only
    with `assign_stan = false`): the issuer's response could not be told apart, so the newer
    request is not sent."""


class _Waiter:
    """One in-flight request: the task parked on it, until it is answered, failed or expired."""

    __slots__ = ("task", "deadline")

    def __init__(self, task: trio.lowlevel.Task, deadline: float):
        self.task: trio.lowlevel.Task | None = task
        self.deadline = deadline

    def wake(self, result: outcome.Outcome) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            trio.lowlevel.reschedule(task, result)


UnmatchedHandler = Callable[[str, tuple[str, ...], Message], None]


def _log_unmatched(issuer: str, key: tuple[str, ...], response: Message) -> None:
    logs.warning("issuer_response_unmatched", issuer=issuer, mti=response.mti,
                 stan=response.get("11"), tid=response.get("41"), rc=response.get("39"))


class IssuerLink:
    def __init__(self, config: IssuerConfig, on_unmatched: UnmatchedHandler = _log_unmatched):
        self.config = config
        self.on_unmatched = on_unmatched
        self.name = config.name
        self._dialect = config.dialect
        self._pending: dict[tuple[str, ...], _Waiter] = {}
        # Every request waits the same `timeout`, so deadlines arrive in the order requests were
        # sent: one task expires them all from the front of this queue.
        self._expiring: collections.deque[tuple[tuple[str, ...], _Waiter]] = collections.deque()
        self._expirer_idle = trio.lowlevel.ParkingLot()
        self._connection: Connection | None = None  # while connected
        self._up = False  # connected (and signed on): open to requests
        self._ever_up = False
        self._reason = ""
        self._last_received = 0.0
        self._stan = itertools.count(1)
        self.connected = trio.Event()  # set while a connection is up; replaced when it drops
        self.unmatched = 0

    @property
    def up(self) -> bool:
        return self._up

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # -- the caller's side -------------------------------------------------------------

    async def request(self, message: Message, sent: Callable[[Message], None] | None = None) -> Message:
        """Send `message` (owned by the link from now on) and wait for its matched response;
        `sent(message)` is called once it is on its way, field 11 assigned."""
        if not self._up:
            raise LinkUnavailable(self.name)
        return await self._exchange(message, sent)

    async def _exchange(self, message: Message, sent: Callable[[Message], None] | None = None) -> Message:
        """Send and park until the reader delivers the answer, the link drops, or the timeout
        expires. Parking on the task itself (no Event, no cancel scope per request) keeps the
        per-request cost of waiting to a dict entry and a deque entry."""
        connection = self._connection
        if connection is None:
            raise LinkUnavailable(self.name)
        if self.config.assign_stan:
            message["11"] = self._next_stan()
        key = self.request_key(message)
        if key in self._pending:
            raise MatchKeyInUse(self.name)
        try:
            connection.send_nowait(self._dialect.frame(message, self.config.tpdu))
        except (trio.WouldBlock, trio.ClosedResourceError):
            raise LinkUnavailable(self.name) from None
        waiter = _Waiter(trio.lowlevel.current_task(), trio.current_time() + self.config.timeout)
        self._pending[key] = waiter
        self._expiring.append((key, waiter))
        if len(self._expiring) == 1:
            self._expirer_idle.unpark()
        if sent is not None:
            sent(message)

        def abort(_raise_cancel) -> trio.lowlevel.Abort:
            waiter.task = None
            if self._pending.get(key) is waiter:
                del self._pending[key]
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    async def _expire_forever(self) -> None:
        """Fail requests whose timeout has passed with LinkTimeout, oldest first."""
        expiring = self._expiring
        while True:
            if not expiring:
                await self._expirer_idle.park()
                continue
            key, waiter = expiring[0]
            if waiter.task is not None and waiter.deadline > trio.current_time():
                await trio.sleep_until(waiter.deadline)
                continue
            expiring.popleft()
            if waiter.task is not None:
                if self._pending.get(key) is waiter:
                    del self._pending[key]
                waiter.wake(outcome.Error(LinkTimeout(self.name)))

    def _next_stan(self) -> str:
        """000001 to 999999, then round again (000000 is not a STAN)."""
        return f"{(next(self._stan) - 1) % 999_999 + 1:06d}"

    def request_key(self, request: Message) -> tuple[str, ...]:
        """The match key the response to `request` (as sent, field 11 assigned) will carry."""
        return self._key(response_mti(request.mti), request)

    def _key(self, mti: str, message: Message) -> tuple[str, ...]:
        fields = message.fields
        return tuple([mti if part == "mti" else fields.get(part, "") for part in self.config.match_key])

    # -- the connection ----------------------------------------------------------------

    async def run(self) -> None:
        """Keep the link connected, and expire its requests, for as long as the owning nursery lives."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._expire_forever)
            await self._connect_forever()

    async def _connect_forever(self) -> None:
        delay = self.config.reconnect_min
        while True:
            try:
                stream = await trio.open_tcp_stream(self.config.host, self.config.port)
            except OSError as exc:
                logs.warning("link_connect_failed", issuer=self.name, error=exc.strerror or str(exc),
                             retry_s=round(delay, 3))
                await trio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            try:
                reason = await self._serve(stream)
            except Exception as exc:  # a bug on one link must not take the switch down
                reason = f"internal error: {type(exc).__name__}"
            logs.warning("link_down", issuer=self.name, reason=reason, failed_in_flight=len(self._pending))
            if self._ever_up:
                delay = self.config.reconnect_min
            else:  # connected but refused (sign-on): back off like a failed connect
                await trio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)

    async def _serve(self, stream: trio.SocketStream) -> str:
        connection = Connection.adopt(stream, SEND_QUEUE)
        self._reason = "closed by issuer"
        self._ever_up = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(connection.run_writer)
                self._connection = connection
                self._last_received = trio.current_time()
                nursery.start_soon(self._read_then_stop, connection, nursery.cancel_scope)
                if self.config.sign_on and not await self._sign_on():
                    nursery.cancel_scope.cancel()
                    return self._reason
                self._up = self._ever_up = True
                self.connected.set()
                logs.event("link_up", issuer=self.name, host=self.config.host, port=self.config.port)
                nursery.start_soon(self._keep_alive, nursery.cancel_scope)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            self._reason = f"connection error: {type(group.exceptions[0]).__name__}"
        finally:
            self._up = False
            self._connection = None
            self.connected = trio.Event()
            connection.close()
            self._fail_pending()
        return self._reason

    def _network_request(self, code: str) -> Message:
        now = datetime.datetime.now(datetime.timezone.utc)
        return Message("0800", {"7": now.strftime("%m%d%H%M%S"), "11": "000000", "70": code})

    async def _sign_on(self) -> bool:
        try:
            answer = await self._exchange(self._network_request("001"))
        except (LinkTimeout, LinkUnavailable):
            self._reason = "no answer to sign-on"
            return False
        if answer.get("39") != RC.APPROVED:
            self._reason = f"sign-on refused with {answer.get('39')}"
            return False
        return True

    async def _keep_alive(self, scope: trio.CancelScope) -> None:
        """Echo (0800/301) after `echo_interval` of silence; drop the link after too many misses."""
        interval = self.config.echo_interval
        missed = 0
        while True:
            idle = trio.current_time() - self._last_received
            if idle < interval:
                await trio.sleep(interval - idle)
                continue
            try:
                await self._exchange(self._network_request("301"))
                missed = 0
            except (LinkTimeout, LinkUnavailable):
                missed += 1
                logs.warning("link_echo_missed", issuer=self.name, missed=missed)
                if missed >= self.config.max_missed_echoes:
                    self._reason = f"{missed} echoes missed"
                    self._up = False
                    scope.cancel()
                    return
                await trio.sleep(interval)

    async def _read_then_stop(self, connection: Connection, scope: trio.CancelScope) -> None:
        self._reason = await self._reader(connection)
        scope.cancel()

    def _fail_pending(self) -> None:
        """In-flight requests fail fast when the link drops; their callers answer 91."""
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            waiter.wake(outcome.Error(LinkUnavailable(self.name)))

    async def _reader(self, connection: Connection) -> str:
        framer = self._dialect.framer(self.config.max_frame)
        while True:
            data = await connection.receive()
            if not data:
                return "closed by issuer"
            self._last_received = trio.current_time()
            try:
                frames = framer.feed(data)
            except FramingError as exc:
                return f"framing error: {exc}"
            for frame in frames:
                try:
                    message = self._dialect.decode(frame.payload)
                except MessageDecodeError as exc:
                    logs.warning("issuer_message_undecodable", issuer=self.name, reason=str(exc))
                    continue
                if is_response(message.mti):
                    self._deliver(message)
                else:
                    self._answer_issuer_request(message, frame.tpdu)

    def _deliver(self, response: Message) -> None:
        key = self._key(response.mti, response)
        waiter = self._pending.pop(key, None)
        if waiter is None:
            self.unmatched += 1
            try:
                self.on_unmatched(self.name, key, response)
            except Exception as exc:  # the link's reader must outlive a bug in what handles late answers
                logs.warning("unmatched_response_not_handled", issuer=self.name, error=type(exc).__name__)
            return
        waiter.wake(outcome.Value(response))

    def _answer_issuer_request(self, request: Message, tpdu: bytes) -> None:
        """Issuers send echo and sign-on too; the switch answers those and logs the rest."""
        if request.mti != "0800" or self._connection is None:
            logs.warning("issuer_request_unsupported", issuer=self.name, mti=request.mti)
            return
        fields = {f: request[f] for f in ("7", "11", "70") if f in request}
        fields["39"] = RC.APPROVED
        try:
            self._connection.send_nowait(self._dialect.frame(Message("0810", fields), reply_tpdu(tpdu)))
        except (trio.WouldBlock, trio.ClosedResourceError, MessageEncodeError, FramingError) as exc:
            logs.warning("issuer_request_unanswered", issuer=self.name, reason=type(exc).__name__)

