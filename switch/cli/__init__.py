"""`cardswitch` entry point: one parser gathered from command modules that all follow one convention.

The convention: a command module defines `register(subparsers)`, which adds its subcommand (with
any actions under it) to the `cardswitch` parser and sets `func` on it, a callable taking the
parsed arguments and returning the exit code. Bad usage raises UsageError (or any
CardswitchError), which `main` prints as one line with exit code 2.

The switch's own commands are the modules of this package, named in COMMANDS. Commands that
need more than the switch (the emulators' demo, issuer and terminal; the tools' replay, capture,
routes, load and bench) live in `emulators/cli/` and `tools/cli/`, and are contributed through
the `cardswitch.commands` entry-point group declared in pyproject.toml, one entry per command
pointing at its module's `register`: switch/ never imports emulators/ or tools/.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from switch.errors import CardswitchError

COMMANDS = ("serve", "journal", "admin", "hsm", "decode")
ENTRY_POINT_GROUP = "cardswitch.commands"


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on bad usage already; keep its one-line message."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cardswitch", description="ISO 8583 card-network switch")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda entry: entry.name):
        entry.load()(subparsers)
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
