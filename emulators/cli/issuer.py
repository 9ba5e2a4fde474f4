"""`cardswitch issuer --config FILE`: an issuer host emulator from the command line."""

from __future__ import annotations

import attrs
import trio

from emulators.issuer import load_issuer_file, serve_issuer
from switch import logs


def register(subparsers) -> None:
    issuer = subparsers.add_parser("issuer", help="run an issuer host emulator")
    issuer.add_argument("--config", required=True, help="issuer file: [issuer], [[cards]], [[rules]]")
    issuer.add_argument("--port", type=int, help="override the port in the file")
    issuer.set_defaults(func=run_issuer)


def run_issuer(args) -> int:
    config, bank = load_issuer_file(args.config)
    if args.port is not None:
        config = attrs.evolve(config, port=args.port)
    logs.configure()
    trio.run(serve_issuer, config, bank)
    return 0
