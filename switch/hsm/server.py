"""`cardswitch hsm serve`: host commands over TCP, 2-byte big-endian length framing.

Thin Trio layer: each connection reads, splits frames, asks the sans-IO dispatcher, writes the
answer. A connection that stalls mid-frame for `idle_timeout` seconds is closed, so a broken
client cannot hold resources; a bad frame only ever gets an error response. With `tls` each
connection first completes a TLS handshake (client certificate checked when asked for) within
HANDSHAKE_TIMEOUT; a failed one is closed with one `tls_handshake_failed` line.
"""

from __future__ import annotations

import trio

from switch import logs
from switch.errors import UsageError
from switch.hsm.codec import DEFAULT_HEADER_LENGTH
from switch.hsm.commands import Dispatcher
from switch.hsm.framing import FrameDecoder, frame
from switch.hsm.lmk import Lmk
from switch.tls import TlsConfig, TlsEndpoint

HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to complete its TLS handshake


async def serve_hsm(
    port: int,
    host: str | None,
    lmk: Lmk,
    *,
    header_length: int = DEFAULT_HEADER_LENGTH,
    idle_timeout: float = 60.0,
    tls: TlsConfig | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the port actually bound (so tests can pass 0)."""
    dispatcher = Dispatcher(lmk, header_length)
    endpoint = TlsEndpoint(tls, server_side=True) if tls is not None else None

    async def handler(stream: trio.SocketStream) -> None:
        if endpoint is None:
            return await _serve_connection(stream, dispatcher, idle_timeout)
        secured = await endpoint.accept(stream, HANDSHAKE_TIMEOUT, listener="hsm")
        if secured is not None:
            await _serve_connection(secured, dispatcher, idle_timeout)

    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:  # port in use, unknown host: the operator's to fix, in one line
        raise UsageError(f"hsm: cannot listen on {host or '*'}:{port} ({exc.strerror or exc})") from None
    bound = listeners[0].socket.getsockname()[1]
    logs.event("hsm_listening", host=host or "*", port=bound, lmk_check_value=lmk.check_value(), tls=tls is not None)
    task_status.started(bound)
    await trio.serve_listeners(handler, listeners)


async def _serve_connection(stream: trio.SocketStream | trio.SSLStream[trio.SocketStream], dispatcher: Dispatcher,
                            idle_timeout: float) -> None:
    decoder = FrameDecoder()
    async with stream:
        try:
            while True:
                # Idle between commands is fine (clients keep connections open); stalling
                # halfway through a frame is not.
                limit = idle_timeout if decoder.pending else float("inf")
                with trio.move_on_after(limit) as idle:
                    data = await stream.receive_some(65536)
                if idle.cancelled_caught or not data:
                    return
                for request in decoder.feed(data):
                    await stream.send_all(frame(dispatcher.handle(request)))
        except trio.BrokenResourceError:
            return
