"""The one writer a stream has: frames from a memory channel, coalesced.

Each connection has exactly one writer task, fed by a memory channel. Under load several frames
are queued by the time the writer wakes; they go out in one `send_all`, so a burst costs one
system call and one trip through the event loop instead of one per frame.
"""

from __future__ import annotations

from typing import Callable

import trio


async def write_queued(stream: trio.abc.SendStream, receive: trio.MemoryReceiveChannel[bytes],
                       observe: Callable[[bytes], None] | None = None) -> None:
    """Write every frame sent on `receive` to `stream`, in order, until the channel closes."""
    async for first in receive:
        batch = [first]
        while True:
            try:
                batch.append(receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        if observe is not None:
            for frame in batch:
                observe(frame)
        await stream.send_all(first if len(batch) == 1 else b"".join(batch))
