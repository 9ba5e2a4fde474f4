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

Conventions every command follows:

- Help: every option has help text; `--help` shows each option's default. All parsers, the
  subcommands' included, are built by `_Parser` with `HelpFormatter`: set here, nowhere else.
- Addresses: a command that connects or listens takes the address as one HOST:PORT value
  (IPv6 in brackets), parsed by `switch.addresses.parse_host_port` (one-line error, exit 2):
  `--target HOST:PORT` to connect to a switch's listener (terminal, load, replay), `--admin
  HOST:PORT` for its admin port, `--listen HOST:PORT` where a command listens (hsm serve,
  issuer). Older separate `--host`/`--port` options stay as aliases.
- Output: `--json` means JSON on stdout, never a file. A file the command writes is named by
  `--output FILE` (or a purpose-named option: `--junit FILE`, `--plot FILE`, `--capture FILE`).
  `bench` and `load` still accept their older `--json FILE` as an alias of `--output FILE`.
- Exit codes: 0 approved / everything as expected; 1 declined / mismatch / failures; 2 bad usage
  (argparse's errors, UsageError, ConfigError); 3 no answer (cannot connect, connection lost,
  timeout: NoAnswer); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from switch.errors import CardswitchError

COMMANDS = ("serve", "journal", "settle", "recon", "admin", "hsm", "decode")
ENTRY_POINT_GROUP = "cardswitch.commands"
DISTRIBUTION = "cardswitch"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_ANSWER = 3


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help shows its default, unless the help text names it already or there
    is none to show (no value, a flag that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.default in (None, False, argparse.SUPPRESS)
                or "default" in text.lower()):
            return text
        return super()._get_help_string(action) or text


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on bad usage already; keep its one-line message. Subparsers are
    built with the class of their parent, so every (sub)command gets `HelpFormatter`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def cardswitch_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cardswitch", description="ISO 8583 card-network switch")
    parser.add_argument("--version", action="version", version=f"%(prog)s {cardswitch_version()}",
                        help="print the version and exit")
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
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _user_error(exc: BaseException) -> CardswitchError | None:
    """The user's mistake inside `exc`, looking through the exception groups Trio nurseries
    wrap errors in; None when anything else is in there too."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, CardswitchError) else None
