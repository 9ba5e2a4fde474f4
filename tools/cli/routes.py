"""`cardswitch routes ...`: check, lookup, diff, test, import and bench routing tables.

Exit codes: 0 fine; 1 the table has errors (check) or cases failed (test); 2 bad usage or an
unreadable file (raised as UsageError/ConfigError, printed as one line by switch.cli).
"""

from __future__ import annotations

import argparse
import json
import sys

from switch import progress
from switch.errors import UsageError
from switch.routes import load_routing_file
from switch.routes.check import check
from switch.routes.source import RoutesFile, read_routes_file
from switch.routing import RouteContext, RoutingTable
from tools.arguments import positive
from tools.findings import report
from tools.junit import write_junit
from tools.output import check_writable
from tools.routes import bench
from tools.routes.cases import read_cases, run_cases
from tools.routes.diff import diff_tables
from tools.routes.explain import check_number, explain
from tools.routes.totoml import to_toml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("routes", help="check, explain, diff and test BIN routing tables",
                                   description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="routes_command", metavar="ACTION", required=True)

    sub = commands.add_parser("check", help="errors and warnings in a table, with line numbers")
    sub.add_argument("file", help="routes TOML, CSV, or a switch config")
    sub.add_argument("--json", action="store_true", help="machine-readable findings")
    sub.set_defaults(func=_check)

    sub = commands.add_parser("lookup", help="the issuer chosen for each PAN, and why")
    sub.add_argument("file")
    sub.add_argument("pans", nargs="+", metavar="PAN", help="PAN or BIN (shown masked)")
    sub.add_argument("--mti", help="transaction MTI, for conditional routes (e.g. 0200)")
    sub.add_argument("--processing-code", help="field 3 or its first two digits (e.g. 00)")
    sub.add_argument("--currency", help="field 49, numeric ISO 4217 (e.g. 840)")
    sub.add_argument("--json", action="store_true", help="print JSON on stdout")
    sub.set_defaults(func=_lookup)

    sub = commands.add_parser("diff", help="BIN ranges whose destination changes between two tables")
    sub.add_argument("old")
    sub.add_argument("new")
    sub.add_argument("--json", action="store_true", help="print JSON on stdout")
    sub.set_defaults(func=_diff)

    sub = commands.add_parser("test", help="run [[cases]] expectations against a table")
    sub.add_argument("file")
    sub.add_argument("cases", help="cases TOML or CSV")
    sub.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    sub.set_defaults(func=_test)

    sub = commands.add_parser("import", help="a CSV BIN file as a routes TOML file, on stdout")
    sub.add_argument("file", help="CSV with bin_low, bin_high (or prefix), issuer[, priority, ...]")
    sub.add_argument("--no-issuers", action="store_true", help="omit [[issuers]] stubs")
    sub.set_defaults(func=_import)

    sub = commands.add_parser("bench", help="build and lookup speed on a generated table")
    sub.add_argument("--entries", type=positive, default=100_000, help="table entries (default 100000)")
    sub.add_argument("--lookups", type=positive, default=100_000, help="random PANs looked up (default 100000)")
    sub.add_argument("--seed", type=int, default=1, help="seed of the generated table and PANs")
    sub.add_argument("--load", choices=("csv", "toml"), help="also time load_routing_file on it")
    sub.set_defaults(func=_bench)


def _open(path: str) -> tuple[RoutesFile, RoutingTable]:
    """A table as far as it can be read (for exploring); unreadable entries noted on stderr."""
    routes = read_routes_file(path)
    if routes.problems:
        print(f"cardswitch: note: {path}: {len(routes.problems)} entries could not be read and are left out "
              "(see `cardswitch routes check`)", file=sys.stderr)
    return routes, RoutingTable(routes.entries)


def _check(args: argparse.Namespace) -> int:
    routes = read_routes_file(args.file)
    findings = check(routes, RoutingTable(routes.entries))
    return report(routes.path, {"entries": len(routes.entries)}, findings, args.json)


def _lookup(args: argparse.Namespace) -> int:
    pans = [check_number(pan, f"PAN argument {index + 1}") for index, pan in enumerate(args.pans)]
    context = _context(args)
    _, table = _open(args.file)
    explanations = [explain(table, pan, context) for pan in pans]
    if args.json:
        print(json.dumps([explanation.as_json() for explanation in explanations], indent=2))
    else:
        for explanation in explanations:
            print("\n".join(explanation.lines()))
    return 0


def _context(args: argparse.Namespace) -> RouteContext | None:
    values = {"mti": args.mti, "processing_code": args.processing_code, "currency": args.currency}
    for name, value in values.items():
        if value is not None and not (value.isascii() and value.isdigit()):
            raise UsageError(f"--{name.replace('_', '-')}: expected digits")
    return RouteContext(**values) if any(v is not None for v in values.values()) else None


def _diff(args: argparse.Namespace) -> int:
    old, old_table = _open(args.old)
    new, new_table = _open(args.new)
    changes = diff_tables(old_table, new_table)
    old_issuers, new_issuers = _issuer_names(old), _issuer_names(new)
    added, removed = sorted(new_issuers - old_issuers), sorted(old_issuers - new_issuers)
    if args.json:
        print(json.dumps({"changes": [change.as_json() for change in changes],
                          "issuers_added": added, "issuers_removed": removed}, indent=2))
        return 0
    for change in changes:
        print(change.line())
    print(f"{len(changes)} changed ranges")
    for label, names in (("issuers added", added), ("issuers removed", removed)):
        if names:
            print(f"{label}: {', '.join(names)}")
    return 0


def _issuer_names(routes: RoutesFile) -> set[str]:
    """Defined issuers, or (for files that define none) the ones routed to."""
    if routes.issuers is not None:
        return set(routes.issuers)
    return {entry.issuer for entry in routes.entries}


def _test(args: argparse.Namespace) -> int:
    check_writable(args.junit, "--junit")
    table = load_routing_file(args.file)
    results = run_cases(table, read_cases(args.cases))
    for result in results:
        print(result.line())
    failed = sum(not result.passed for result in results)
    print(f"{len(results)} cases: {len(results) - failed} passed, {failed} failed")
    if args.junit:
        write_junit(args.junit, f"routes {args.cases}",
                    [(result.case.label, None if result.passed else result.line()) for result in results])
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    if not args.file.lower().endswith(".csv"):
        raise UsageError(f"{args.file}: expected a .csv file")
    with progress.bar(2, "routes import: reading") as bar:  # two steps: read the CSV, write the TOML
        routes = read_routes_file(args.file)
        bar.update()
        if routes.problems:
            bar.close()
            for finding in routes.problems:
                print(f"cardswitch: error: {finding.format(routes.path)}", file=sys.stderr)
            return 2
        bar.set_description(f"routes import: writing {len(routes.entries)} routes")
        issuers = [] if args.no_issuers else sorted(
            {entry.issuer for entry in routes.entries} | {entry.fallback for entry in routes.entries if entry.fallback})
        text = to_toml(routes.entries, issuers)
        bar.update()
    sys.stdout.write(text)
    return 0


def _bench(args: argparse.Namespace) -> int:
    for line in bench.run(args.entries, args.lookups, args.seed, args.load):
        print(line)
    return 0
