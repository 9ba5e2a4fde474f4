"""Issuer links: one persistent outbound connection per issuer, many requests in flight.

The link connects, keeps the connection, and reconnects with capped exponential backoff. What is
in flight (match keys, the link's own STANs, deadlines) is switch.core.matcher's, free of I/O;
this module is the connection around it: a request is written by the link's single writer task
and its task parked until the reader finds the answer, the link drops or the deadline passes.

A response that matches nothing (late, or unsolicited) goes to the owner's handler, never
dropped silently; a network-management request from the issuer (echo) is answered, and its key
change (0800/101) applied before anything after it is read.

An issuer that asks for MACs (`mac = true`) gets every request the link sends (the switch's own,
reversals, store-and-forward) MACed under its ZAK as the link encodes it, and every answer's MAC
checked over the bytes it came in; an answer that fails is unusable (LinkMacFailed). The link's
own sign-on and echoes go without.

With `[issuers.tls]` the link is TLS: each connection completes a handshake (the issuer's
certificate checked against the CA and the server name) within the issuer's timeout before it
carries anything; a failed one is logged (`tls_handshake_failed`) and retried like a refused
connection, so the link stays down and its requests get 91 (or stand-in).
"""

from __future__ import annotations

import datetime
from typing import Callable

import outcome
import trio

from switch import logs
from switch.config import IssuerConfig
from switch.core.codes import RC
from switch.core.keychange import is_key_change
from switch.core.matcher import KeyInUse, Matcher
from switch.issuer_keys import IssuerKeys
from switch.macs import Macs
from switch.streams import Connection
from switch.tls import HandshakeFailed, TlsEndpoint
from switch.wire.dialect import MessageDecodeError, MessageEncodeError
from switch.wire.framing import FramingError
from switch.wire.message import Message, is_response, response_mti

# Frames waiting for the socket before requests are refused as "link down". Terminals bound
# their own requests in flight, so this is reached only when the issuer stops reading.
SEND_QUEUE = 65536


class LinkUnavailable(Exception):
    """The issuer is not connected: answer 91 (or stand in) at once."""


class LinkDropped(Exception):
    """The connection dropped while the request was in flight: the issuer may have it."""


class LinkTimeout(Exception):
    """The issuer did not answer within its timeout."""


class LinkRejected(LinkTimeout):
    """The network sent the request back under a reject header (Visa): no answer will come, so
    it ends now as one that timed out would (91 or stand-in, its reversal through SAF)."""


class LinkMacFailed(LinkDropped):
    """The answer's MAC failed: unusable, and the issuer may have approved the request."""


class _Waiter:
    """One request of the link: the task parked on it, until it is answered, failed or expired
    (or, before it is sent, cancelled: then it never is)."""

    __slots__ = ("task", "raw", "key")

    def __init__(self, task: trio.lowlevel.Task):
        self.task: trio.lowlevel.Task | None = task
        self.raw = b""  # the answer as it came (its MAC covers it)
        self.key: tuple[str, ...] | None = None  # its match key, once sent

    def wake(self, result: outcome.Outcome) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            trio.lowlevel.reschedule(task, result)


UnmatchedHandler = Callable[[str, tuple[str, ...], Message], None]
# What a request's sending waits for: called with the sending, it runs it later, never at once
# (switch.journal's `after_durable`: once the request's reversal is committed).
Gate = Callable[[Callable[[], None]], None]


def _log_unmatched(issuer: str, key: tuple[str, ...], response: Message) -> None:
    logs.warning("issuer_response_unmatched", issuer=issuer, mti=response.mti,
                 stan=response.get("11"), tid=response.get("41"), rc=response.get("39"))


class IssuerLink:
    def __init__(self, config: IssuerConfig, on_unmatched: UnmatchedHandler = _log_unmatched,
                 macs: Macs | None = None, keys: IssuerKeys | None = None):
        self.config = config
        self.on_unmatched = on_unmatched
        self._macs = macs  # the HSM's MACs, when the issuer asks for them
        self._keys = keys  # takes the issuer's key changes; None: refused (no HSM)
        self.name = config.name
        self._dialect = config.dialect
        self.matcher: Matcher[_Waiter] = Matcher(config.match_key, config.timeout, config.assign_stan)
        self._expirer_idle = trio.lowlevel.ParkingLot()
        self._connection: Connection | None = None  # while connected
        self._up = False  # connected (and signed on): open to requests
        self._ever_up = False
        self._reason = ""
        self._last_received = 0.0
        self.connected = trio.Event()  # set while a connection is up; replaced when it drops
        self.unmatched = 0
        self.tls = TlsEndpoint(config.tls, server_side=False) if config.tls is not None else None

    @property
    def up(self) -> bool:
        return self._up

    @property
    def in_flight(self) -> int:
        return len(self.matcher)

    # -- the caller's side -------------------------------------------------------------

    def outgoing(self, message: Message) -> Message:
        """`message` as this link will send it (its own STAN, on a copy): what the caller
        journals as sent before `exchange()`."""
        return self.matcher.outgoing(message)

    async def request(self, message: Message) -> Message:
        """`exchange(outgoing(message))`, for a caller that need not know what was sent."""
        return await self.exchange(self.outgoing(message))

    async def exchange(self, sent: Message, after: Gate | None = None) -> Message:
        """Send `sent` (from `outgoing()`) and wait for its matched response. With `after`, the
        sending waits for it (the journal holding the request's reversal) while this task is
        already parked for the answer: one wake-up a request, not two. Raises LinkUnavailable
        (not sent, the link down then), LinkDropped (sent, then the connection went),
        LinkTimeout (counted from the sending), or KeyInUse (another request with the same key
        in flight). Parking on the task itself (no Event, no cancel scope per request) keeps
        the per-request cost of waiting to a dict entry and a deque entry."""
        if self._macs is not None and self.config.mac:
            return await self._exchange_with_macs(self._macs, sent, after)
        return await self._exchange(sent, None, _Waiter(trio.lowlevel.current_task()), after)

    async def _exchange_with_macs(self, macs: Macs, sent: Message, after: Gate | None) -> Message:
        """`exchange()` with the request MACed under the issuer's ZAK and the answer checked."""
        zak = self.config.zak
        assert zak is not None  # the config requires one with mac = true
        sealed = await macs.seal(sent, self._dialect, zak)
        if sealed is None:  # the HSM failed (logged)
            raise LinkUnavailable(self.name)
        waiter = _Waiter(trio.lowlevel.current_task())
        response = await self._exchange(sealed[0], sealed[1], waiter, after)
        failure = await macs.check(response, waiter.raw, self._dialect, zak)
        if failure is not None:
            logs.warning("issuer_response_mac_failed", issuer=self.name, mti=response.mti,
                         stan=response.get("11"), reason=failure)
            raise LinkMacFailed(self.name)
        return response

    async def _exchange(self, sent: Message, payload: bytes | None, waiter: _Waiter, after: Gate | None,
                        network: bool = False) -> Message:
        """Send `sent` (as `payload` when it is already encoded), at once or when `after` runs
        it, and park until its answer. `network`: a sign-on or echo, which goes whenever the
        link is connected, not only once it is open to requests."""
        if after is None:
            self._send(sent, payload, waiter, network)
        else:
            after(lambda: self._send_parked(sent, payload, waiter))
        matcher = self.matcher

        def abort(_raise_cancel) -> trio.lowlevel.Abort:
            waiter.task = None  # not sent yet: never will be
            if waiter.key is not None:
                matcher.forget(waiter.key, waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    def _send(self, sent: Message, payload: bytes | None, waiter: _Waiter, network: bool = False) -> None:
        """Queue `sent` on the connection with `waiter` in the matcher, its deadline from now.
        Raises LinkUnavailable (nothing sent) or KeyInUse."""
        connection = self._connection
        if connection is None or not (self._up or network):
            raise LinkUnavailable(self.name)
        if payload is None:
            data = self._dialect.frame(sent, self.config.header)
        else:
            data = self._dialect.framing.frame(payload, self.config.header)
        matcher = self.matcher
        was_idle = matcher.next_deadline() is None
        waiter.key = key = matcher.park(sent, waiter, trio.current_time())
        try:
            connection.send_nowait(data)
        except (trio.WouldBlock, trio.ClosedResourceError):
            matcher.forget(key, waiter)
            waiter.key = None
            raise LinkUnavailable(self.name) from None
        if was_idle:
            self._expirer_idle.unpark()

    def _send_parked(self, sent: Message, payload: bytes | None, waiter: _Waiter) -> None:
        """`_send`, run by a gate while the request's task is parked: what fails it wakes it."""
        if waiter.task is None:
            return  # cancelled while it waited for the gate: never sent
        try:
            self._send(sent, payload, waiter)
        except Exception as exc:
            waiter.wake(outcome.Error(exc))

    async def _expire_forever(self) -> None:
        """Fail requests whose timeout has passed with LinkTimeout, oldest first."""
        matcher = self.matcher
        while True:
            deadline = matcher.next_deadline()
            if deadline is None:
                await self._expirer_idle.park()
                continue
            if deadline > trio.current_time():
                await trio.sleep_until(deadline)
                continue
            for waiter in matcher.expired(trio.current_time()):
                waiter.wake(outcome.Error(LinkTimeout(self.name)))

    def request_key(self, request: Message) -> tuple[str, ...]:
        """The match key the response to `request` (as sent) will carry."""
        return self.matcher.request_key(request)

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
                stream = await self._connect()
            except (OSError, HandshakeFailed) as exc:
                self._log_connect_failed(exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            try:
                reason = await self._serve(stream)
            except Exception as exc:  # a bug on one link must not take the switch down
                reason = f"internal error: {type(exc).__name__}"
            logs.warning("link_down", issuer=self.name, reason=reason, failed_in_flight=len(self.matcher))
            if self._ever_up:
                delay = self.config.reconnect_min
            else:  # connected but refused (sign-on): back off like a failed connect
                await trio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)

    async def _connect(self) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
        """A new connection to the issuer, over TLS (handshake done) when configured."""
        stream = await trio.open_tcp_stream(self.config.host, self.config.port)
        if self.tls is None:
            return stream
        return await self.tls.secure(stream, self.config.timeout, self.config.host)

    def _log_connect_failed(self, exc: OSError | HandshakeFailed, retry: float) -> None:
        if isinstance(exc, HandshakeFailed):
            logs.warning("tls_handshake_failed", issuer=self.name, peer=f"{self.config.host}:{self.config.port}",
                         reason=exc.reason, retry_s=round(retry, 3))
        else:
            logs.warning("link_connect_failed", issuer=self.name, error=exc.strerror or str(exc),
                         retry_s=round(retry, 3))

    async def _serve(self, stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]) -> str:
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

    async def _network_exchange(self, code: str) -> Message:
        """Sign-on or echo (field 70 `code`): sent while the link is not yet open to requests."""
        now = datetime.datetime.now(datetime.timezone.utc)
        request = Message("0800", {"7": now.strftime("%m%d%H%M%S"), "11": "000000", "70": code})
        return await self._exchange(self.matcher.outgoing(request), None, _Waiter(trio.lowlevel.current_task()),
                                    None, network=True)

    async def _sign_on(self) -> bool:
        try:
            answer = await self._network_exchange("001")
        except (LinkTimeout, LinkUnavailable, LinkDropped, KeyInUse):
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
                await self._network_exchange("301")
                missed = 0
            except (LinkTimeout, LinkUnavailable, LinkDropped, KeyInUse):
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
        """In-flight requests fail fast when the link drops (their callers reverse them: the
        issuer may have approved them before the connection went)."""
        for waiter in self.matcher.drain():
            waiter.wake(outcome.Error(LinkDropped(self.name)))

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
                rejected = self._dialect.framing.header.rejection(frame.header)
                if rejected is not None:
                    self._rejected(frame.payload, rejected)
                    continue
                try:
                    message = self._dialect.decode(frame.payload)
                except MessageDecodeError as exc:
                    logs.warning("issuer_message_undecodable", issuer=self.name, reason=str(exc))
                    continue
                if is_response(message.mti):
                    self._deliver(message, frame.payload)
                elif is_key_change(message):  # before what follows: that may be under the new key
                    code = await self._keys.change(self.config, message) if self._keys else RC.NOT_SUPPORTED
                    self._answer_issuer_request(message, frame.header, code)
                else:
                    self._answer_issuer_request(message, frame.header)

    def _rejected(self, payload: bytes, code: str) -> None:
        """The network refused one of ours and sent it back: its wait ends at once, as unanswered
        (one it cannot read waits out its timeout)."""
        logs.warning("network_reject", issuer=self.name, reject_code=code)
        try:
            request = self._dialect.decode(payload)
        except MessageDecodeError:
            return
        _, waiter = self.matcher.match(Message(response_mti(request.mti), request.fields))
        if waiter is not None:
            waiter.wake(outcome.Error(LinkRejected(self.name)))

    def _deliver(self, response: Message, raw: bytes) -> None:
        key, waiter = self.matcher.match(response)
        if waiter is None:
            self.unmatched += 1
            try:
                self.on_unmatched(self.name, key, response)
            except Exception as exc:  # the link's reader must outlive a bug in what handles late answers
                logs.warning("unmatched_response_not_handled", issuer=self.name, error=type(exc).__name__)
            return
        waiter.raw = raw
        waiter.wake(outcome.Value(response))

    def _answer_issuer_request(self, request: Message, header: bytes, code: str = RC.APPROVED) -> None:
        """Issuers send echo, sign-on and key changes too; the switch answers those (with `code`)
        and logs the rest."""
        if request.mti != "0800" or self._connection is None:
            logs.warning("issuer_request_unsupported", issuer=self.name, mti=request.mti)
            return
        fields = {f: request[f] for f in ("7", "11", "70") if f in request}
        fields["39"] = code
        try:
            self._connection.send_nowait(self._dialect.frame(Message("0810", fields), self._dialect.framing.reply_header(header)))
        except (trio.WouldBlock, trio.ClosedResourceError, MessageEncodeError, FramingError) as exc:
            logs.warning("issuer_request_unanswered", issuer=self.name, reason=type(exc).__name__)

