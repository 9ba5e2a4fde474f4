"""`cardswitch risk ...`: check, test and bench risk rules files.

Exit codes: 0 fine; 1 the file has errors (check) or cases failed (test); 2 bad usage or an
unreadable file (raised as UsageError/ConfigError, printed as one line by switch.cli).
"""

from __future__ import annotations

import argparse

from switch.config import load_config
from switch.risk import read_rules_file
from tools.findings import report
from tools.risk.check import check


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("risk", help="check, test and bench risk rules files",
                                   description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="risk_command", metavar="ACTION", required=True)

    sub = commands.add_parser("check", help="errors and warnings in a rules file, with line numbers")
    sub.add_argument("file", help="risk rules TOML")
    sub.add_argument("--json", action="store_true", help="machine-readable findings on stdout")
    sub.add_argument("--config", metavar="SWITCH_TOML",
                     help="also check issuers and BIN scopes against this switch config")
    sub.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    read = read_rules_file(args.file)
    config = load_config(args.config) if args.config else None
    findings = check(read, issuers=[issuer.name for issuer in config.issuers] if config else None,
                     routing=config.routing if config else None)
    return report(read.path, {"rules": len(read.rules)}, findings, args.json)
