"""`cardswitch risk ...`: check, test and bench risk rules files.

Exit codes: 0 fine; 1 the file has errors (check) or cases failed (test); 2 bad usage or an
unreadable file (raised as UsageError/ConfigError, printed as one line by switch.cli).
"""

from __future__ import annotations

import argparse
import json

from switch.config import load_config
from switch.risk import load_rules, read_rules_file
from tools.arguments import positive
from tools.findings import report
from tools.junit import write_junit
from tools.output import check_writable
from tools.risk import bench
from tools.risk.cases import read_cases, run_cases
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

    sub = commands.add_parser("test", help="run [[cases]] of requests against a rules file")
    sub.add_argument("rules", help="risk rules TOML")
    sub.add_argument("cases", help="cases TOML: [[cases]] with [[cases.requests]]")
    sub.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    sub.set_defaults(func=_test)

    sub = commands.add_parser("bench", help="CPU cost of the risk stage per transaction, on synthetic traffic")
    sub.add_argument("rules", help="risk rules TOML (specs/bench/risk-20.toml: 20 rules of every kind)")
    sub.add_argument("--requests", type=positive, default=100_000, help="synthetic requests")
    sub.add_argument("--seed", type=int, default=1, help="seed of the synthetic traffic")
    sub.add_argument("--json", action="store_true", help="print JSON on stdout")
    sub.set_defaults(func=_bench)


def _check(args: argparse.Namespace) -> int:
    read = read_rules_file(args.file)
    config = load_config(args.config) if args.config else None
    findings = check(read, issuers=[issuer.name for issuer in config.issuers] if config else None,
                     routing=config.routing if config else None)
    return report(read.path, {"rules": len(read.rules)}, findings, args.json)


def _test(args: argparse.Namespace) -> int:
    check_writable(args.junit, "--junit")
    rules = load_rules(args.rules)
    results = run_cases(rules, read_cases(args.cases))
    for result in results:
        print("\n".join(result.lines()))
    failed = sum(not result.passed for result in results)
    print(f"{len(results)} cases: {len(results) - failed} passed, {failed} failed")
    if args.junit:
        write_junit(args.junit, f"risk {args.cases}",
                    [(result.case.label, "\n".join(result.failures) or None) for result in results])
    return 1 if failed else 0


def _bench(args: argparse.Namespace) -> int:
    report = bench.run(load_rules(args.rules), args.requests, args.seed)
    print(json.dumps(report.as_json(), indent=2) if args.json else "\n".join(report.lines()))
    return 0
