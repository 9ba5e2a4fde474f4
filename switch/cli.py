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
    "switch.commands.journal",
    "switch.commands.admin",
    "switch.hsm.cli",
    "emulators.commands",
    "switch.commands.replay",
    "switch.commands.decode",
    "switch.commands.capture",
    "switch.routes.cli",
    "switch.commands.load",
    "switch.commands.bench",
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
    except (CardswitchError, BaseExceptionGroup) as exc:
        error = _user_error(exc)
        if error is None:
            raise
        print(f"cardswitch: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _user_error(exc: BaseException) -> CardswitchError | None:
    """The user's mistake inside `exc`, looking through the exception groups Trio nurseries
    wrap errors in; None when anything else is in there too."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, CardswitchError) else None


if __name__ == "__main__":
    sys.exit(main())
