"""The terminal-facing side: one TCP listener per `[[listeners]]` entry.

Each connection gets one reader task that splits frames and starts a task per request, so a slow
issuer never holds up the other requests on the same connection, and one writer task, so
responses never interleave. Whatever a terminal sends, the worst outcome is that its own
connection is closed with a logged reason; the server and other connections go on.

Per listener: a connection with nothing in flight and nothing received for `idle_timeout` is
closed, so is one whose frame, once started, is not complete within `frame_timeout` (bytes
trickling in, slow loris), and beyond `max_connections` a new connection is closed at once.
Each close is one `terminal_disconnected` line with its reason.

On a TLS listener each connection first completes a handshake, in its own task and within
`frame_timeout`; a client that fails it (plain TCP, an old protocol version, a missing or bad
certificate, silence) is closed with one `tls_handshake_failed` line and never served.

A request's task belongs to the switch (`Terminals.transactions`), not to its connection: a terminal
that hangs up must not cancel a request the issuer may already have approved. The transaction
finishes and is journaled; only its response has nowhere to go, and that is logged.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Awaitable, Callable

import trio

from switch import logs
from switch.capture.sink import Capture
from switch.config import ListenerConfig
from switch.errors import ConfigError
from switch.core.codes import RC
from switch.core.messages import answer_undecodable, respond
from switch.core.terminals import ConnectionInfo
from switch.streams import Connection
from switch.tls import TlsEndpoint, peer_subject
from switch.wire.dialect import MessageDecodeError, MessageEncodeError
from switch.wire.framing import Frame, FramingError
from switch.wire.masking import mask_pan_like
from switch.wire.message import Message

# Requests of one connection being processed or answered but not yet written; a terminal that
# sends more is not read from until answers go out. The writer's queue can therefore never hold
# more than this, and a decided answer always has room.
MAX_IN_FLIGHT_PER_CONNECTION = 256
REQUEST_TASK = "terminal request"  # named once: trio would otherwise format a name per task
REFUSED_LOG_INTERVAL = 1.0  # seconds: at most one connection_refused line per listener this often

# request, listener, connection, the request as sent (what its MAC covers), and what takes its
# answer: called once, at once or later (switch.service.Switch.handle), unless the handler raises
Handler = Callable[[Message, ListenerConfig, ConnectionInfo, bytes, Callable[[Message], None]], Awaitable[None]]
_CONNECTION_NUMBERS = itertools.count(1)  # names a connection for rate limits per connection


class Terminals:
    """Every terminal connection of the switch, and the nurseries their connections and their
    requests live in, so that shutdown can stop reading, interrupt what outlives its grace, let
    the answers already decided go out, and only then close."""

    def __init__(self, connections: trio.Nursery, transactions: trio.Nursery):
        self.connections = connections
        self.transactions = transactions
        self.open: set[TerminalConnection] = set()

    def finish(self) -> None:
        """Stop reading from every terminal; each connection closes once its answers are written."""
        for connection in list(self.open):
            connection.finish()


class Admission:
    """A listener's open connections, held to `max_connections`; refusals are logged at most
    once per REFUSED_LOG_INTERVAL, with how many were refused since the last line."""

    def __init__(self, listener: ListenerConfig):
        self.listener = listener
        self.open = 0
        self._refused = 0  # since the last connection_refused line
        self._logged_at = -float("inf")

    def admit(self) -> bool:
        if self.open < self.listener.max_connections:
            self.open += 1
            return True
        self._refused += 1
        now = trio.current_time()
        if now - self._logged_at >= REFUSED_LOG_INTERVAL:
            logs.warning("connection_refused", listener=self.listener.name, limit=self.listener.max_connections,
                         refused=self._refused)
            self._logged_at, self._refused = now, 0
        return False

    def left(self) -> None:
        self.open -= 1


async def serve_listener(handler: Handler, listener: ListenerConfig, terminals: Terminals,
                         *, capture: Capture | None = None, tls: TlsEndpoint | None = None,
                         task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Accept terminals on the listener's address; reports the bound port via task_status.

    Connections live in `terminals`, not here, so cancelling this task stops accepting new
    terminals while those already connected finish what they sent (graceful shutdown).
    With `capture` (test environments only) every frame in and out is recorded per connection.
    With `tls` every connection is TLS, with the endpoint's context of the moment it connected.
    """
    try:
        sockets = await _open_listeners(listener)
    except OSError as exc:  # port in use, unknown host: the operator's to fix, in one line
        raise ConfigError("config", f"listener {listener.name!r}",
                          f"an address to listen on; {listener.host}:{listener.port}: {exc.strerror or exc}") from None
    port = sockets[0].socket.getsockname()[1]
    logs.event("listener_up", listener=listener.name, host=listener.host, port=port,
               dialect=listener.dialect.name, tls=tls is not None)
    task_status.started(port)
    admission = Admission(listener)  # shared by the listener's sockets (IPv4 and IPv6)
    async with trio.open_nursery() as accepting:
        for sock in sockets:
            accepting.start_soon(_accept, sock, handler, listener, terminals, capture, admission, tls)


async def _open_listeners(listener: ListenerConfig) -> list[trio.SocketListener]:
    """Listening sockets for the listener's address. With `reuse_port` (`serve --workers`) each
    worker process binds the same port with SO_REUSEPORT and the kernel spreads new connections
    over them; without it a port already in use is an error, as it should be."""
    if not listener.reuse_port:
        return await trio.open_tcp_listeners(listener.port, host=listener.host)
    listeners = []
    for family, kind, proto, _, address in await trio.socket.getaddrinfo(
            listener.host, listener.port, type=trio.socket.SOCK_STREAM, flags=trio.socket.AI_PASSIVE):
        sock = trio.socket.socket(family, kind, proto)
        try:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEPORT, 1)
            await sock.bind(address)
            sock.listen()
        except OSError:
            sock.close()
            raise
        listeners.append(trio.SocketListener(sock))
    return listeners


async def _accept(sock: trio.SocketListener, handler: Handler, listener: ListenerConfig,
                  terminals: Terminals, capture: Capture | None, admission: Admission,
                  tls: TlsEndpoint | None) -> None:
    async with sock:
        while True:
            try:
                stream = await sock.accept()
            except OSError as exc:  # out of file descriptors and the like: wait, don't die
                logs.warning("accept_failed", listener=listener.name, error=exc.strerror or str(exc))
                await trio.sleep(0.1)
                continue
            if not admission.admit():
                stream.socket.close()  # at once: no task, no read, nothing the peer sent is looked at
                continue
            if tls is not None:
                terminals.connections.start_soon(_serve_tls, tls, stream, handler, listener, terminals, capture,
                                                 admission)
                continue
            connection = TerminalConnection(handler, listener, terminals, stream, capture)
            terminals.connections.start_soon(connection.serve, admission)


async def _serve_tls(tls: TlsEndpoint, stream: trio.SocketStream, handler: Handler, listener: ListenerConfig,
                     terminals: Terminals, capture: Capture | None, admission: Admission) -> None:
    """The handshake, bounded by the listener's frame timeout, then the connection as any other."""
    secured = None
    try:
        secured = await tls.accept(stream, listener.frame_timeout, listener=listener.name)
    finally:
        if secured is None:  # the handshake failed (logged), or the switch is stopping
            admission.left()
    if secured is None:
        return
    await TerminalConnection(handler, listener, terminals, secured, capture).serve(admission)


class TerminalConnection:
    def __init__(self, handler: Handler, listener: ListenerConfig, terminals: Terminals,
                 stream: trio.SocketStream | trio.SSLStream[trio.SocketStream], capture: Capture | None = None):
        self.handler = handler
        self.listener = listener
        self.dialect = listener.dialect
        self.terminals = terminals
        self.capture = capture  # test environments only
        self.capture_id = capture.connection_id(listener.name) if capture else ""
        observe = (lambda frame: self._record("out", frame)) if capture is not None else None
        self.connection = Connection.adopt(stream, MAX_IN_FLIGHT_PER_CONNECTION, observe)
        self.peer = self.connection.peer
        self.info = ConnectionInfo(next(_CONNECTION_NUMBERS), self.peer, peer_subject(stream))
        self.requests = 0
        self.in_flight = 0
        self._answered = trio.lowlevel.ParkingLot()  # the reader waits here for free slots
        self._whole = trio.CancelScope()  # cancelled when the terminal misbehaves
        self._reading = trio.CancelScope()  # cancelled at shutdown: answer what came, then close
        self._rejected: str | None = None
        # For the timeouts (trio's clock): when the last byte came or the last request finished,
        # and when the first byte of a frame not yet complete came (None: no partial frame).
        self._last_active = trio.current_time()
        self._frame_started: float | None = None

    async def serve(self, admission: Admission | None = None) -> None:
        """Run the connection; whatever happens, close it and log why."""
        self.terminals.open.add(self)
        reason = "closed at shutdown"  # unless something below says otherwise
        try:
            reason = await self._run()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            reason = "connection lost"
        except* Exception as group:  # a bug must cost one connection, never the server
            inner = group.exceptions[0]
            while isinstance(inner, BaseExceptionGroup):
                inner = inner.exceptions[0]
            reason = f"internal error: {type(inner).__name__}"
            logs.warning("internal_error", listener=self.listener.name, peer=self.peer, error=type(inner).__name__)
        finally:
            self.terminals.open.discard(self)
            if admission is not None:
                admission.left()
            self.connection.close()
            logs.event("terminal_disconnected", listener=self.listener.name, peer=self.peer, reason=reason,
                       requests=self.requests)

    async def _run(self) -> str:
        """Serve until the terminal closes (after answering what it sent) or misbehaves."""
        with self._whole:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.connection.run_writer)
                watching = trio.CancelScope()
                nursery.start_soon(self._watch, watching)
                try:
                    with self._reading:
                        await self._reader()
                    watching.cancel()  # nothing more is read: what came is answered, then closed
                    while self.in_flight:
                        await self._answered.park()
                finally:
                    watching.cancel()
                    self.connection.finish_writing()
        return self._rejected or ("closed by the switch" if self._reading.cancel_called else "closed by terminal")

    def finish(self) -> None:
        self._reading.cancel()

    def _reject(self, reason: str) -> None:
        """The terminal sent something that leaves no way to answer: close its connection."""
        if self._rejected is None:
            self._rejected = reason
            logs.warning("terminal_connection_rejected", listener=self.listener.name,
                         peer=self.peer, reason=reason)
        self._whole.cancel()

    def _close(self, reason: str) -> None:
        """Close for a reason the disconnect line gives (a timeout): no line of its own."""
        if self._rejected is None:
            self._rejected = reason
        self._whole.cancel()

    async def _watch(self, scope: trio.CancelScope) -> None:
        with scope:
            await self._watch_timeouts()

    async def _watch_timeouts(self) -> None:
        """Close the connection once a started frame is overdue, or it has been idle too long:
        nothing in flight, nothing waiting to be written, nothing received. Wakes at the next
        deadline it knows of, and at least every quarter of the shorter timeout (a frame may
        start while it sleeps), so the reader pays no more than reading the clock."""
        idle, frame = self.listener.idle_timeout, self.listener.frame_timeout
        tick = min(idle, frame) / 4
        while True:
            now = trio.current_time()
            started = self._frame_started
            if started is not None:
                if now - started >= frame:
                    return self._close(f"frame timeout: a frame incomplete {round(frame * 1000)} ms after its first byte")
                wake = min(now + tick, started + frame)
            elif self.in_flight == 0 and not self.connection.queued:
                if now - self._last_active >= idle:
                    return self._close(f"idle timeout: nothing in flight or received for {round(idle * 1000)} ms")
                wake = min(now + tick, self._last_active + idle)
            else:
                wake = now + tick
            await trio.sleep_until(wake)

    def _record(self, direction: str, data: bytes) -> None:
        if self.capture is not None:
            self.capture.record(self.capture_id, direction, self.dialect, data)

    async def _reader(self) -> None:
        framer = self.dialect.framer(self.listener.max_frame)
        while data := await self.connection.receive():
            self._last_active = now = trio.current_time()
            try:
                frames = framer.feed(data)
            except FramingError as exc:
                return self._reject(f"framing error: {exc}")
            if not framer.buffered:
                self._frame_started = None
            elif frames or self._frame_started is None:  # what is left begins a new frame
                self._frame_started = now
            for frame in frames:  # one read can carry hundreds of frames: admit them one by one
                if self._full():
                    await self._wait_for_a_slot()
                if self.capture is not None:
                    self._record("in", self.dialect.framing.frame(frame.payload, frame.header))
                self.in_flight += 1
                self.requests += 1
                self.terminals.transactions.start_soon(self._process, frame, name=REQUEST_TASK)

    def _full(self) -> bool:
        """MAX_IN_FLIGHT_PER_CONNECTION requests are processed or waiting to be written."""
        return self.in_flight + self.connection.queued >= MAX_IN_FLIGHT_PER_CONNECTION

    async def _wait_for_a_slot(self) -> None:
        """Until the connection is no longer `_full()`. An answered request leaves only when its
        answer is written, so what frees a slot is the writer emptying the queue, or a request
        finishing when nothing is queued."""
        while self._full():
            if self.connection.queued:
                await self.connection.wait_drained()
            else:
                await self._answered.park()

    async def _process(self, frame: Frame) -> None:
        """One request, from bytes to its answer handed to `_deliver`: at once, or once the
        journal holds what it says, after this task has ended. Never raises: it runs in the
        switch's nursery, where an exception would stop every connection."""
        deliver = partial(self._deliver, frame.header)
        try:
            request = self.dialect.decode(frame.payload)
        except MessageDecodeError as exc:
            answer = answer_undecodable(exc)
            logs.warning("terminal_message_undecodable", listener=self.listener.name, peer=self.peer,
                         reason=mask_pan_like(str(exc)), answered=answer is not None)
            if answer is None:
                self._reject(mask_pan_like(str(exc)))
            return deliver(answer)
        except Exception as exc:
            logs.warning("internal_error", listener=self.listener.name, peer=self.peer, error=type(exc).__name__)
            return deliver(None)
        try:
            await self.handler(request, self.listener, self.info, frame.payload, deliver)
        except Exception as exc:  # not handed over: answer 96 rather than leave the terminal waiting
            logs.warning("internal_error", listener=self.listener.name, mti=request.mti,
                         stan=mask_pan_like(request.get("11")), error=type(exc).__name__)
            deliver(respond(request, RC.SYSTEM_ERROR))
        except BaseException:  # cancelled at a stop whose grace ran out: no answer, the slot freed
            deliver(None)
            raise

    def _deliver(self, header: bytes, response: Message | None) -> None:
        """Queue `response` (None: none) for the terminal, and free the request's slot. Called
        once per request, maybe by the journal's committer: never raises."""
        try:
            if response is not None:
                self._send(self._encode(response, self.dialect.framing.reply_header(header)), response)
        except Exception as exc:
            logs.warning("internal_error", listener=self.listener.name, peer=self.peer, error=type(exc).__name__)
        finally:
            self.in_flight -= 1
            self._last_active = trio.current_time()  # idle counts from the last answer too
            if self._answered:
                self._answered.unpark_all()

    def _send(self, data: bytes, response: Message) -> None:
        try:
            self.connection.send_nowait(data)
        except (trio.ClosedResourceError, trio.WouldBlock):
            logs.warning("response_undelivered", listener=self.listener.name, peer=self.peer,
                         mti=response.mti, stan=mask_pan_like(response.get("11")), reason="terminal connection closed")

    def _encode(self, response: Message, header: bytes) -> bytes:
        try:
            return self.dialect.frame(response, header)
        except (MessageEncodeError, FramingError) as exc:
            fitted = self._fit_reason(response)
            if fitted is not None:  # a 30's reason (field 44) this dialect has no room for
                return self._encode(fitted, header)
            logs.warning("response_unencodable", listener=self.listener.name, mti=response.mti,
                         stan=mask_pan_like(response.get("11")), reason=mask_pan_like(str(exc)))
            fallback = Message(response.mti, {f: response[f] for f in ("11", "41") if f in response})
            fallback["39"] = RC.SYSTEM_ERROR
            try:
                return self.dialect.frame(fallback, header)
            except (MessageEncodeError, FramingError):  # even 11/41 do not fit: 39 alone
                return self.dialect.frame(Message(response.mti, {"39": RC.SYSTEM_ERROR}), header)

    def _fit_reason(self, response: Message) -> Message | None:
        """A 30 with its field 44 cut to what this dialect holds (or without it, when the dialect
        has no field 44 as text); None when there is nothing to cut. Tried only when the response
        does not encode: the dialects in specs/ all hold ISO's 25 characters."""
        reason = response.get("44")
        if reason is None or response.get("39") != RC.FORMAT_ERROR:
            return None
        spec = self.dialect.spec.get("44")
        fits = spec is not None and spec.get("data_enc") == "ascii" and spec.get("len_enc") == "ascii"
        room = int(spec.get("max_len", 0)) if fits and spec is not None else 0
        fields = dict(response.fields)
        if room and len(reason) > room:
            fields["44"] = reason[:room]
        elif "44" in fields:
            del fields["44"]
        return Message(response.mti, fields)
