"""`cardswitch load --target HOST:PORT`: drive a switch with a transaction mix and report.

Prints TPS, latency percentiles, response codes, errors and lost responses at the end, a
progress line on stderr while running (on a terminal only); `--output FILE` (older spelling:
`--json FILE`) and `--plot FILE` keep the figures. Exits 0 when the run was clean, 1 on failures
(lost requests, errors, a 94, duplicate answers), 3 when nothing was answered at all, 2 on bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from switch.addresses import parse_host_port
from switch.errors import NoAnswer, UsageError
from switch.tlsoptions import add_client_options, client_endpoint
from tools.output import check_writable, write_text
from tools.load import plot, report
from tools.load.mix import (
    DEFAULT_MIX, DEMO_KEYS, DEMO_LMK, DEMO_TPK, Mix, cards_by_kind, parse_weights, terminal_pin_key,
)
from tools.load.runner import LoadRun, LoadSettings


def register(subparsers) -> None:
    parser = subparsers.add_parser("load", help="load-test a switch with a transaction mix")
    parser.add_argument("--target", required=True, help="HOST:PORT of a terminal listener")
    parser.add_argument("--dialect", default="iso87-binary", help="the listener's dialect")
    parser.add_argument("--connections", type=int, default=4, help="terminal connections, each its own TID")
    parser.add_argument("--tps", type=float, help="offered load (open loop); default: closed loop")
    parser.add_argument("--in-flight", type=int, default=1, help="closed loop: operations outstanding per connection")
    parser.add_argument("--duration", type=float, help="seconds of issuing (default 10 unless --count)")
    parser.add_argument("--count", type=int, help="operations to issue")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"KIND=WEIGHT,... (default {DEFAULT_MIX}; "
                        "kinds: purchase, pin, decline, reversal, timeout)")
    parser.add_argument("--issuer-file", action="append", type=Path,
                        help="issuer emulator file to take cards from (repeatable; default: the demo's)")
    parser.add_argument("--keys", type=Path, default=DEMO_KEYS, help="PIN purchases: key store with the terminals' TPK")
    parser.add_argument("--lmk-file", type=Path, default=DEMO_LMK, help="PIN purchases: the key store's LMK")
    parser.add_argument("--tpk", default=DEMO_TPK, help="PIN purchases: the terminals' TPK name")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as lost")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to wait for answers after the last request")
    parser.add_argument("--seed", type=int, default=8583, help="seed of the mix")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--output", metavar="FILE", type=Path, help="write the figures here, as JSON")
    output.add_argument("--json", metavar="FILE", type=Path, dest="json_file",
                        help="older alias of --output FILE (a file, unlike --json elsewhere)")
    parser.add_argument("--plot", type=Path, help="write an HTML page with latency charts here")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_client_options(parser)
    parser.set_defaults(func=run)




def settings_from(args, weights: dict[str, int]) -> LoadSettings:
    host, port = parse_host_port(args.target, "--target")
    for name in ("connections", "in_flight"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')}: expected at least 1")
    for name in ("tps", "duration", "timeout"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name}: expected a number above 0")
    if args.count is not None and args.count < 1:
        raise UsageError("--count: expected at least 1")
    if args.grace < 0:
        raise UsageError("--grace: expected 0 or more")
    duration = args.duration if args.duration is not None or args.count is not None else 10.0
    pin_key = terminal_pin_key(args.keys, args.lmk_file, args.tpk) if weights.get("pin") else None
    return LoadSettings(host=host, port=port, dialect=args.dialect, connections=args.connections,
                        tps=args.tps, in_flight=args.in_flight, duration=duration, count=args.count,
                        timeout=args.timeout, grace=args.grace, pin_key=pin_key, tls=client_endpoint(args))


def run(args) -> int:
    weights = parse_weights(args.mix)
    settings = settings_from(args, weights)
    output, output_option = (args.output, "--output") if args.output else (args.json_file, "--json")
    check_writable(output, output_option)
    check_writable(args.plot, "--plot")
    mix = Mix(weights, cards_by_kind(args.issuer_file), seed=args.seed)
    progress = None if args.quiet or not sys.stderr.isatty() else report.Progress()  # a terminal only
    results = trio.run(LoadRun(settings, mix, progress).run)
    if progress is not None:
        progress.finish()
    figures = report.summary(results)
    print(report.text(figures))
    if output:
        write_text(output, json.dumps(figures, indent=2) + "\n", output_option)
    if args.plot:
        write_text(args.plot, plot.render(results, f"cardswitch load {args.target}"), "--plot")
    failures = report.problems(figures)
    for problem in failures:
        print(f"load: failed: {problem}", file=sys.stderr)
    if not figures["answered"]:
        print(f"load: no answer from {args.target}", file=sys.stderr)
        return NoAnswer.exit_code
    return 1 if failures else 0
