"""`cardswitch issuer --config FILE`: an issuer host emulator from the command line."""

from __future__ import annotations

import attrs
import trio

from emulators.issuer import load_issuer_file, serve_issuer
from switch import logs
from switch.addresses import parse_host_port
from switch.errors import UsageError


def register(subparsers) -> None:
    issuer = subparsers.add_parser("issuer", help="run an issuer host emulator")
    issuer.add_argument("--config", required=True, help="issuer file: [issuer], [[cards]], [[rules]]")
    issuer.add_argument("--listen", metavar="HOST:PORT",
                        help="override the file's host and port (port 0: any free port)")
    issuer.add_argument("--port", type=int, help="override the port in the file (1 to 65535, 0: any free port)")
    issuer.set_defaults(func=run_issuer)


def run_issuer(args) -> int:
    config, bank = load_issuer_file(args.config)
    if args.listen is not None:
        if args.port is not None:
            raise UsageError("--listen: give HOST:PORT or --port, not both")
        host, port = parse_host_port(args.listen, "--listen", any_port=True)
        config = attrs.evolve(config, host=host, port=port)
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise UsageError(f"--port: expected a port from 1 to 65535 (0: any free port), got {args.port}")
        config = attrs.evolve(config, port=args.port)
    logs.configure()
    trio.run(serve_issuer, config, bank)
    return 0
