"""The hot path's sockets: non-blocking system calls, trio only when the kernel says "not now".

trio's SocketStream pays for generality on every call: a checkpoint after each successful send
and receive, a conflict detector, and (in front of it) a memory channel feeding the writer, about
as much per message as decoding it (see docs/performance.md, "The hot path's sockets"). A switch
connection has exactly one reader and one writer by construction, so `Connection` does the
minimum: `recv`/`send` on a stdlib socket, and `trio.lowlevel.wait_readable`/`wait_writable`
when they would block.

Writes never make the caller wait: `send_nowait()` queues a frame and wakes the connection's
writer task. By the time that task runs, every frame queued in the same turn of the event loop
is there, and they go out in one `send`, so a burst of responses costs one system call.

`TlsConnection` is the same connection over TLS (trio's SSLStream, after the handshake that
switch.tls runs): the queue and the writer are shared, only the reads and writes differ. It
raises what a socket raises (OSError when the peer breaks the channel), so readers handle both
alike. `Connection.adopt()` picks the right one for the stream it is given.
"""

from __future__ import annotations

import socket
from typing import Callable

import trio

RECEIVE_SIZE = 65536
EAGER_READS = 16  # receives in a row without waiting before the reader yields to others


class Connection:
    """A connected TCP socket with one reader and one writer task."""

    def __init__(self, sock: socket.socket, max_queued: int, observe: Callable[[bytes], None] | None = None):
        sock.setblocking(False)
        self._sock = sock
        self._start(max_queued, observe)

    def _start(self, max_queued: int, observe: Callable[[bytes], None] | None) -> None:
        """The state every connection keeps, whatever carries its bytes."""
        self._max_queued = max_queued
        self._observe = observe  # sees each frame as it is written (capture, tests)
        self._queue: list[bytes] = []
        self._writer_waiting = trio.lowlevel.ParkingLot()
        self._drained = trio.lowlevel.ParkingLot()
        self._eager_reads = 0
        self._read_all = False  # the last read emptied the socket's buffer
        self._writing = True
        self._sending = False  # a batch is on its way to the socket
        self._closed = False

    @classmethod
    def adopt(cls, stream: trio.SocketStream | trio.SSLStream[trio.SocketStream], max_queued: int,
              observe: Callable[[bytes], None] | None = None) -> Connection:
        """Take over the socket of a stream that trio opened or accepted (its options stay), or,
        for a TLS stream, the stream itself."""
        if isinstance(stream, trio.SSLStream):
            return TlsConnection(stream, max_queued, observe)
        return cls(socket.socket(fileno=stream.socket.detach()), max_queued, observe)

    @property
    def peer(self) -> str:
        return peer_name(self._sock)

    @property
    def queued(self) -> int:
        """Frames waiting for the writer."""
        return len(self._queue)

    # -- reading -----------------------------------------------------------------------

    async def receive(self) -> bytes:
        """Whatever the peer has sent (up to RECEIVE_SIZE bytes); b"" once it has closed.

        A read that returned less than asked emptied the socket, so the next one waits for
        readiness first instead of paying for a failed `recv` (how often that was: see
        docs/performance.md, "The hot path's sockets")."""
        if self._read_all:
            await trio.lowlevel.wait_readable(self._sock)
        elif self._eager_reads >= EAGER_READS:  # a peer that never pauses must not starve the rest
            self._eager_reads = 0
            await trio.lowlevel.checkpoint()
        while True:
            try:
                data = self._sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)
                continue
            self._read_all = len(data) < RECEIVE_SIZE
            self._eager_reads = 0 if self._read_all else self._eager_reads + 1
            return data

    # -- writing -----------------------------------------------------------------------

    def send_nowait(self, frame: bytes) -> None:
        """Queue `frame` for the writer. Raises trio.WouldBlock when `max_queued` frames are
        already waiting (the peer does not read), trio.ClosedResourceError once writing ended."""
        if not self._writing:
            raise trio.ClosedResourceError("connection closed for writing")
        if len(self._queue) >= self._max_queued:
            raise trio.WouldBlock
        self._queue.append(frame)
        if len(self._queue) == 1:
            self._writer_waiting.unpark()

    def finish_writing(self) -> None:
        """No more frames: the writer sends what is queued, then returns."""
        self._writing = False
        self._writer_waiting.unpark()

    async def wait_drained(self) -> None:
        """Until the writer has sent everything queued (or writing has ended)."""
        while (self._queue or self._sending) and self._writing:
            await self._drained.park()

    async def run_writer(self) -> None:
        """Send queued frames, coalesced, until `finish_writing()` and the queue is empty."""
        while True:
            if not self._queue:
                self._drained.unpark_all()
                if not self._writing:
                    return
                await self._writer_waiting.park()
                continue
            batch, self._queue = self._queue, []
            if self._observe is not None:
                for frame in batch:
                    self._observe(frame)
            self._sending = True
            try:
                await self._send_all(batch[0] if len(batch) == 1 else b"".join(batch))
            finally:
                self._sending = False

    async def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)
                continue
            view = view[sent:]

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; a task still waiting on it gets trio.ClosedResourceError."""
        if not self._closed:
            self._closed = True
            self._writing = False
            self._drained.unpark_all()
            self._close_transport()

    def _close_transport(self) -> None:
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()


class TlsConnection(Connection):
    """A connection over an established TLS stream. Reads and writes go through trio's
    SSLStream (which may read and write at once, as the reader and the writer do); closing
    closes the socket at once, without waiting on the peer for TLS's close_notify."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream], max_queued: int,
                 observe: Callable[[bytes], None] | None = None):
        self._stream = stream
        self._start(max_queued, observe)

    @property
    def peer(self) -> str:
        return peer_name(self._stream.transport_stream.socket)

    async def receive(self) -> bytes:
        try:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))  # the same object when it is bytes
        except trio.BrokenResourceError as exc:
            raise ConnectionResetError(f"TLS channel broken: {exc.__cause__ or exc}") from None

    async def _send_all(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except trio.BrokenResourceError as exc:
            raise ConnectionResetError(f"TLS channel broken: {exc.__cause__ or exc}") from None

    def _close_transport(self) -> None:
        self._stream.transport_stream.socket.close()  # trio's close wakes whoever waits on it


def peer_name(sock: socket.socket | trio.socket.SocketType) -> str:
    """`host:port` of the peer, for log lines; "unknown" once the socket is gone."""
    try:
        return "%s:%s" % sock.getpeername()[:2]
    except OSError:
        return "unknown"
