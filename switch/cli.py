"""`cardswitch` entry point.

Each area of the project owns its subcommands in a module with a `register(subparsers)`
function; this file only gathers them and turns the project's own errors into a one-line
message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from switch.errors import CardswitchError

COMMAND_MODULES = (
    "switch.commands.serve",
    "switch.commands.demo",
    "emulators.commands",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on bad usage already; keep its one-line message."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cardswitch", description="ISO 8583 card-network switch")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CardswitchError as exc:
        print(f"cardswitch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
