"""`cardswitch replay CAPTURE --target HOST:PORT`: replay a capture and compare the answers.

Prints every request that did not match (with its field diff, masked), a summary table, and
optionally JUnit XML; exits 0 only when every request matched, 1 otherwise, 3 when the target
cannot be reached or answered none of the requests, 2 on bad usage.
"""

from __future__ import annotations

import trio

from switch.addresses import parse_host_port
from switch.errors import NoAnswer, UsageError
from switch.tlsoptions import add_client_options, client_endpoint
from switch.wire.dialect import load_dialect
from tools.capture.load import load_capture
from tools.output import check_writable
from tools.replay.compare import DEFAULT_IGNORE, parse_ignore
from tools.replay.engine import MATCHED, UNANSWERED, ReplayError, ReplayOptions, replay
from tools.replay.plan import build_plan
from tools.replay.report import Progress, describe, summary_table, write_junit
from tools.replay.rules import load_rules


def register(subparsers) -> None:
    parser = subparsers.add_parser("replay", help="replay a capture against a switch and compare the answers")
    parser.add_argument("capture", metavar="CAPTURE", help="capture file: JSON lines, pcap or pcapng")
    parser.add_argument("--target", required=True, metavar="HOST:PORT", help="where to send the requests")
    parser.add_argument("--dialect", help="the target's dialect, and the dialect of pcap/pcapng captures "
                                          "(default: the capture's own, iso87-binary for pcap)")
    parser.add_argument("--server-port", type=int, metavar="PORT",
                        help="pcap/pcapng: the server's port (default: the port that received the SYN)")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML, one testcase per request")
    parser.add_argument("--rules", metavar="FILE", help="TOML file of [[rule]] expectations")
    parser.add_argument("--ignore", metavar="FIELDS", default=",".join(sorted(DEFAULT_IGNORE, key=int)),
                        help="comma-separated fields not compared (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--as-fast-as-possible", action="store_true",
                      help="send as soon as the answers each request waited for are in (the default)")
    pace.add_argument("--original-timing", action="store_true", help="keep the captured gaps between requests")
    pace.add_argument("--speed", type=float, metavar="X", help="captured timing, X times faster (0.5 = half speed)")
    parser.add_argument("--verbose", action="store_true", help="also list the requests that matched")
    add_client_options(parser)
    parser.set_defaults(func=run)




def options_from(args) -> ReplayOptions:
    host, port = parse_host_port(args.target, "--target")
    if args.speed is not None and not args.speed > 0:
        raise UsageError("--speed: expected a factor greater than 0")
    if not args.timeout > 0:
        raise UsageError("--timeout: expected seconds greater than 0")
    speed = 1.0 if args.original_timing else args.speed
    return ReplayOptions(host=host, port=port, dialect=load_dialect(args.dialect) if args.dialect else None,
                         speed=speed, timeout=args.timeout, ignore=parse_ignore(args.ignore),
                         rules=load_rules(args.rules) if args.rules else (), tls=client_endpoint(args))


def run(args) -> int:
    options = options_from(args)
    check_writable(args.junit, "--junit")
    records = load_capture(args.capture, options.dialect, args.server_port)
    plan = build_plan(records)
    if not plan.conversations:
        raise UsageError(f"{args.capture}: no requests to replay")
    progress = Progress(len(plan.exchanges))

    async def main():
        started = trio.current_time()
        try:
            results = await replay(plan, options, progress.update)
        except ReplayError as exc:
            raise NoAnswer(str(exc)) from None
        return results, trio.current_time() - started

    try:
        results, seconds = trio.run(main)
    finally:
        progress.close()
    for result in results:
        if args.verbose or result.status != MATCHED or result.note:
            print(describe(result))
    if plan.skipped:
        print(f"{plan.skipped} captured frames skipped (undecodable, or answers to no captured request)")
    print(summary_table(results, seconds))
    if args.junit:
        try:
            write_junit(args.junit, results, seconds)
        except OSError as exc:
            raise UsageError(f"--junit {args.junit}: cannot write ({exc.strerror or exc})") from None
    if results and all(result.status == UNANSWERED for result in results):
        return NoAnswer.exit_code
    return 0 if all(result.status == MATCHED for result in results) else 1
