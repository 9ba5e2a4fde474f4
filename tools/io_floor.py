"""The I/O floor: a bare byte pump between a terminal socket and an issuer socket.

It moves bytes the way the switch does (switch.streams.Connection: non-blocking sockets under
Trio, one reader and one coalescing writer per socket) and does nothing else: no framing,
decoding, routing, HSM or journal. Its CPU per transaction is therefore the least the switch's
I/O layer can cost on a machine. `cardswitch bench` measures it in every run
(`floor_us_per_txn`, `ratio_to_floor`: docs/performance.md). By hand: run an issuer, this pump
in front of it, and a load against the pump; read the pump's CPU time:

    cardswitch issuer --config specs/demo/issuers/bank_a.toml &
    python -m tools.io_floor --port 8583 --issuer 127.0.0.1:9101 & PUMP=$!
    cardswitch load --target 127.0.0.1:8583 --duration 8 --in-flight 4 --connections 8 \\
        --mix purchase=100 --issuer-file specs/demo/issuers/bank_a.toml --json floor.json
    awk '{print $14 + $15, "ticks of CPU"}' /proc/$PUMP/stat    # / answered, from floor.json
"""

from __future__ import annotations

import argparse
from functools import partial

import trio

from switch.addresses import parse_host_port
from switch.streams import Connection

MAX_QUEUED = 100_000


async def pump(source: Connection, sink: Connection) -> None:
    while data := await source.receive():
        sink.send_nowait(data)


async def connect_through(issuer: tuple[str, int], stream: trio.SocketStream) -> None:
    """One issuer connection per terminal connection, bytes copied both ways."""
    terminal = Connection.adopt(stream, MAX_QUEUED)
    upstream = Connection.adopt(await trio.open_tcp_stream(*issuer), MAX_QUEUED)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(terminal.run_writer)
            nursery.start_soon(upstream.run_writer)
            nursery.start_soon(pump, upstream, terminal)
            await pump(terminal, upstream)
            nursery.cancel_scope.cancel()
    finally:
        terminal.close()
        upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8583)
    parser.add_argument("--issuer", default="127.0.0.1:9101", help="HOST:PORT to copy bytes to")
    args = parser.parse_args()
    issuer = parse_host_port(args.issuer, "--issuer")
    trio.run(partial(trio.serve_tcp, partial(connect_through, issuer), args.port, host="127.0.0.1"))


if __name__ == "__main__":
    main()
