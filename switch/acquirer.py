"""The terminal-facing side: one TCP listener per `[[listeners]]` entry.

Each connection gets one reader task that splits frames and starts a task per request, so a slow
issuer never holds up the other requests on the same connection, and one writer task fed by a
memory channel, so responses never interleave. Whatever a terminal sends, the worst outcome is
that its own connection is closed with a logged reason; the server and other connections go on.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import trio

from switch import logs
from switch.capture.sink import Capture
from switch.config import ListenerConfig
from switch.errors import ConfigError
from switch.engine import RC, answer_undecodable, respond
from switch.streams import write_queued
from switch.wire.dialect import MessageDecodeError, MessageEncodeError
from switch.wire.framing import Frame, FramingError, reply_tpdu
from switch.wire.message import Message

RECEIVE_SIZE = 65536
SEND_QUEUE = 256
MAX_IN_FLIGHT_PER_CONNECTION = 256

Handler = Callable[[Message, ListenerConfig], Awaitable[Message]]


async def serve_listener(handler: Handler, listener: ListenerConfig, connections: trio.Nursery,
                         *, capture: Capture | None = None, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Accept terminals on the listener's address; reports the bound port via task_status.

    Connections live in `connections`, not here, so cancelling this task stops accepting new
    terminals while those already connected finish what they sent (graceful shutdown).
    With `capture` (test environments only) every frame in and out is recorded per connection.
    """
    try:
        sockets = await _open_listeners(listener)
    except OSError as exc:  # port in use, unknown host: the operator's to fix, in one line
        raise ConfigError("config", f"listener {listener.name!r}",
                          f"an address to listen on; {listener.host}:{listener.port}: {exc.strerror or exc}") from None
    port = sockets[0].socket.getsockname()[1]
    logs.event("listener_up", listener=listener.name, host=listener.host, port=port,
               dialect=listener.dialect.name)
    task_status.started(port)
    async with trio.open_nursery() as accepting:
        for sock in sockets:
            accepting.start_soon(_accept, sock, handler, listener, connections, capture)


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
                  connections: trio.Nursery, capture: Capture | None) -> None:
    async with sock:
        while True:
            try:
                stream = await sock.accept()
            except OSError as exc:  # out of file descriptors and the like: wait, don't die
                logs.warning("accept_failed", listener=listener.name, error=exc.strerror or str(exc))
                await trio.sleep(0.1)
                continue
            connections.start_soon(_serve_connection, handler, listener, capture, stream)


async def _serve_connection(handler: Handler, listener: ListenerConfig, capture: Capture | None,
                            stream: trio.SocketStream) -> None:
    try:
        peer = "%s:%s" % stream.socket.getpeername()[:2]
    except OSError:
        peer = "unknown"
    connection = TerminalConnection(handler, listener, stream, peer, capture)
    reason = "internal error"
    try:
        reason = await connection.run()
    except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        reason = "connection lost"
    except* Exception as group:  # a bug must cost one connection, never the server
        inner = group.exceptions[0]
        while isinstance(inner, BaseExceptionGroup):
            inner = inner.exceptions[0]
        reason = f"internal error: {type(inner).__name__}"
        logs.warning("internal_error", listener=listener.name, peer=peer, error=type(inner).__name__)
    finally:
        await trio.aclose_forcefully(stream)
    logs.event("terminal_disconnected", listener=listener.name, peer=peer, reason=reason,
               requests=connection.requests)


class TerminalConnection:
    def __init__(self, handler: Handler, listener: ListenerConfig, stream: trio.SocketStream, peer: str,
                 capture: Capture | None = None):
        self.handler = handler
        self.listener = listener
        self.dialect = listener.dialect
        self.stream = stream
        self.peer = peer
        self.requests = 0
        self._limit = trio.CapacityLimiter(MAX_IN_FLIGHT_PER_CONNECTION)
        self._scope = trio.CancelScope()
        self._rejected: str | None = None
        self.capture = capture
        self.capture_id = capture.connection_id(listener.name) if capture else ""

    async def run(self) -> str:
        """Serve until the terminal closes (after answering what it sent) or misbehaves."""
        send, receive = trio.open_memory_channel[bytes](SEND_QUEUE)
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, receive)
                async with send, trio.open_nursery() as requests:
                    await self._reader(requests, send)
        return self._rejected or "closed by terminal"

    def _reject(self, reason: str) -> None:
        """The terminal sent something that leaves no way to answer: close its connection."""
        if self._rejected is None:
            self._rejected = reason
            logs.warning("terminal_connection_rejected", listener=self.listener.name,
                         peer=self.peer, reason=reason)
        self._scope.cancel()

    async def _writer(self, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        observe = (lambda frame: self._record("out", frame)) if self.capture is not None else None
        await write_queued(self.stream, receive, observe)

    def _record(self, direction: str, data: bytes) -> None:
        if self.capture is not None:
            self.capture.record(self.capture_id, direction, self.dialect, data)

    async def _reader(self, requests: trio.Nursery, send: trio.MemorySendChannel[bytes]) -> None:
        framer = self.dialect.framer(self.listener.max_frame)
        while True:
            data = await self.stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            try:
                frames = framer.feed(data)
            except FramingError as exc:
                return self._reject(f"framing error: {exc}")
            for frame in frames:
                if self.capture is not None:
                    self._record("in", self.dialect.framing.frame(frame.payload, frame.tpdu))
                token = object()  # identical frames (retransmissions) each hold their own slot
                await self._limit.acquire_on_behalf_of(token)
                requests.start_soon(self._process, frame, token, send)

    async def _process(self, frame: Frame, token: object, send: trio.MemorySendChannel[bytes]) -> None:
        try:
            self.requests += 1
            response = await self._answer(frame)
            if response is None:
                return
            await send.send(self._encode(response, frame.tpdu))
        finally:
            self._limit.release_on_behalf_of(token)

    async def _answer(self, frame: Frame) -> Message | None:
        try:
            request = self.dialect.decode(frame.payload)
        except MessageDecodeError as exc:
            answer = answer_undecodable(exc)
            logs.warning("terminal_message_undecodable", listener=self.listener.name, peer=self.peer,
                         reason=str(exc), answered=answer is not None)
            if answer is None:
                self._reject(str(exc))
            return answer
        try:
            return await self.handler(request, self.listener)
        except Exception as exc:  # answer 96 rather than leave the terminal waiting
            logs.warning("internal_error", listener=self.listener.name, mti=request.mti,
                         stan=request.get("11"), error=type(exc).__name__)
            return respond(request, RC.SYSTEM_ERROR)

    def _encode(self, response: Message, tpdu: bytes) -> bytes:
        tpdu = reply_tpdu(tpdu)
        try:
            return self.dialect.frame(response, tpdu)
        except (MessageEncodeError, FramingError) as exc:
            logs.warning("response_unencodable", listener=self.listener.name, mti=response.mti,
                         stan=response.get("11"), reason=str(exc))
            fallback = Message(response.mti, {f: response[f] for f in ("11", "41") if f in response})
            fallback["39"] = RC.SYSTEM_ERROR
            return self.dialect.frame(fallback, tpdu)
