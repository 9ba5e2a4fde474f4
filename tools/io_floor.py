"""The I/O floor: a bare Trio byte pump between a terminal socket and an issuer socket.

It does what the switch does with sockets and nothing else (no framing, decoding, routing or
journal), so its CPU per transaction is the least any Trio switch can cost on a machine. Run an
issuer, this pump in front of it, and a load against the pump; read the pump's CPU time:

    cardswitch issuer --config specs/demo/issuers/bank_a.toml &
    python -m tools.io_floor --port 8583 --issuer 127.0.0.1:9101 & PUMP=$!
    cardswitch load --target 127.0.0.1:8583 --tps 600 --duration 8 \\
        --mix purchase=100 --issuer-file specs/demo/issuers/bank_a.toml
    awk '{print ($14 + $15) * 10000 / 4800, "us of CPU per transaction"}' /proc/$PUMP/stat
"""

from __future__ import annotations

import argparse
from functools import partial

import trio

from switch.addresses import parse_host_port


async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    while data := await source.receive_some(65536):
        await sink.send_all(data)


async def connect_through(issuer: tuple[str, int], terminal: trio.SocketStream) -> None:
    """One issuer connection per terminal connection, bytes copied both ways."""
    upstream = await trio.open_tcp_stream(*issuer)
    async with terminal, upstream, trio.open_nursery() as nursery:
        nursery.start_soon(pump, terminal, upstream)
        nursery.start_soon(pump, upstream, terminal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8583)
    parser.add_argument("--issuer", default="127.0.0.1:9101", help="HOST:PORT to copy bytes to")
    args = parser.parse_args()
    issuer = parse_host_port(args.issuer, "--issuer")
    trio.run(partial(trio.serve_tcp, partial(connect_through, issuer), args.port, host="127.0.0.1"))


if __name__ == "__main__":
    main()
