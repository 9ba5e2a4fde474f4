"""`cardswitch bench [--quick] [--output FILE]`: the demo network as processes, measured.

Reports tps_max, latency at fixed offered loads, the switch's CPU per transaction, the codec-only
cost on the same mix, their ratio and lost responses, all on the SQLite journal with one worker;
`--postgres URL|auto` adds the switch on a shared PostgreSQL journal at each `--workers` count
(rows of `scaling`). More than one worker needs it: the SQLite journal is one process's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from switch.errors import UsageError
from tools.output import check_writable, write_text
from tools.load import pgserver
from tools.load.bench import Bench, BenchOptions, table
from tools.load.mix import DEFAULT_MIX, parse_weights


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark the demo network run as separate processes")
    parser.add_argument("--quick", action="store_true",
                        help="5 s phases: about 25 s in all, about 10 s more per --workers count with --postgres")
    parser.add_argument("--duration", type=float, help="seconds per phase (default 20, --quick 5)")
    parser.add_argument("--loads", default="200,1000", help="offered loads in TPS for latency (default 200,1000)")
    parser.add_argument("--postgres", metavar="URL|auto",
                        help="also measure the switch on a shared PostgreSQL journal: a server's postgresql:// URL "
                             "(a database is made on it for the run and dropped after), or auto: a throwaway "
                             "cluster started for the run (its CPU per transaction is reported too)")
    parser.add_argument("--workers", default="1",
                        help="switch worker counts to measure on PostgreSQL (--postgres), e.g. 1,2")
    parser.add_argument("--connections", type=int, default=8, help="terminal connections")
    parser.add_argument("--in-flight", type=int, default=4, help="closed loop: outstanding per connection")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"transaction mix (default {DEFAULT_MIX})")
    parser.add_argument("--tls", action="store_true",
                        help="terminals connect over TLS (compare with a run without it: what TLS costs)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--output", metavar="FILE", type=Path, help="write the figures here, as JSON")
    output.add_argument("--json", metavar="FILE", type=Path, dest="json_file",
                        help="older alias of --output FILE (a file, unlike --json elsewhere)")
    parser.set_defaults(func=run)


def _numbers(text: str, option: str, kind: type) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(value <= 0 for value in values):
        raise UsageError(f"{option}: expected positive numbers separated by commas, got {text!r}")
    return values


def options_from(args) -> BenchOptions:
    parse_weights(args.mix)
    duration = args.duration if args.duration is not None else 5.0 if args.quick else 20.0
    if duration <= 0:
        raise UsageError("--duration: expected a number above 0")
    if args.connections < 1 or args.in_flight < 1:
        raise UsageError("--connections and --in-flight: expected at least 1")
    workers = _numbers(args.workers, "--workers", int)
    if args.postgres is None and max(workers) > 1:
        raise UsageError(f"--workers {args.workers}: more than one worker needs a shared journal, and SQLite is one"
                         " process's: add --postgres URL|auto")
    if args.postgres is not None:
        pgserver.check_option(args.postgres)
    return BenchOptions(phase_seconds=duration, warmup_seconds=min(3.0, duration),
                        loads=_numbers(args.loads, "--loads", float), workers=workers,
                        connections=args.connections, in_flight=args.in_flight, mix=args.mix, tls=args.tls,
                        postgres=args.postgres)


def run(args) -> int:
    options = options_from(args)
    output, output_option = (args.output, "--output") if args.output else (args.json_file, "--json")
    check_writable(output, output_option)
    bench = Bench(options, say=_say_on_a_terminal)
    figures = bench.run()
    print(table(figures))
    for note in bench.mix_notes:
        print(f"note: {note}")
    if output:
        write_text(output, json.dumps(figures, indent=2) + "\n", output_option)
    return 1 if figures["lost"] else 0


def _say_on_a_terminal(line: str) -> None:
    """Which phase runs: progress for a person at a terminal, nothing in CI logs or pipes."""
    if sys.stderr.isatty():
        print(f"bench: {line}", file=sys.stderr, flush=True)
