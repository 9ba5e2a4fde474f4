"""Where the switch's time goes, by stage, from a sampling profile of the running switch.

Reads py-spy's collapsed stacks (`py-spy record --pid PID --format raw --nonblocking -o FILE`,
one line per stack: `frame;frame;... COUNT`, each frame `function (file:line)`) and prints the
share of samples per stage of the path of a purchase (DESIGN.md): decode, each participant, HSM,
journal, issuer link, encode, socket I/O, trio's scheduling. A sample is charged to the innermost
frame in the switch's or trio's code: library and standard-library frames go to their caller
(sqlite3 to the journal, `json` to whoever dumps, `socket.send` to switch.streams), and frames in
switch/wire to decode or encode by the function that called into them. A per-function profile
answers "which function"; the issue asks "which stage", and a stage is many small functions.

Leaves that wait rather than work (a thread's `Condition.wait`, trio's epoll wait), which
py-spy's idle detection lets through, are dropped. py-spy samples wall time while a thread is not
idle: a `send` on loopback that wakes a receiver which then preempts the sender is over-counted
on a busy host, so read socket I/O against the process's system time (docs/performance.md,
"Where the time goes (issue 20)").

    python -m tools.load.stages profile-1.txt profile-2.txt
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path
from typing import Iterable

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
IDLE = frozenset({"Condition.wait", "Event.wait", "EpollIOManager.get_events"})
DECODING = frozenset({"decode", "feed", "_split", "_read_bitmap", "_read_plans", "decode_length"})
ENCODING = frozenset({"encode", "frame", "encode_length", "_bitmap_text"})
TRIO = "trio: scheduler, tasks, checkpoints"
OUTSIDE = "outside the switch and trio (interpreter, GC)"
# switch/ modules (paths under switch/, a trailing "/" for a package) -> stage, first match wins
MODULES = (
    ("hsm/", "HSM"), ("security.py", "HSM"), ("core/participants/card_security.py", "HSM"),
    ("core/risk/", "participant risk"),
    ("journal.py", "journal"), ("pgjournal.py", "journal"), ("records.py", "journal"), ("vault.py", "journal"),
    ("stores.py", "journal"), ("audit.py", "journal"), ("pintries.py", "journal"),
    ("streams.py", "socket I/O"), ("links.py", "issuer link"), ("acquirer.py", "acquirer connection"),
    ("logs.py", "log lines"), ("metrics.py", "metrics"), ("service.py", "service: performing effects"),
    ("routing.py", "participant routing"),
)


def _module_stage(module: str) -> str:
    for prefix, stage in MODULES:
        if module == prefix or (prefix.endswith("/") and module.startswith(prefix)):
            return stage
    if module.startswith("core/participants/"):
        return "participant " + module.rsplit("/", 1)[1].removesuffix(".py")
    if module.startswith("core/"):
        return "core: pipeline, txn, window, states"
    return "switch: " + module


def stage(frames: list[tuple[str, str]]) -> str:
    """The stage of one stack, given as (function, file) from the outermost frame in."""
    wire = None
    for function, file in reversed(frames):
        path = "/" + file.split("site-packages/")[-1].lstrip("/")
        if "/switch/wire/" in path:
            name = function.rsplit(".", 1)[-1]
            if wire is None and name in DECODING:
                wire = "decode (framing, dialect)"
            elif wire is None and name in ENCODING:
                wire = "encode (dialect, framing)"
            continue
        if "/trio/" in path:
            return wire or TRIO
        if "/switch/" in path:
            return wire or _module_stage(path.split("/switch/", 1)[1])
    return wire or OUTSIDE


def shares(lines: Iterable[str]) -> collections.Counter[str]:
    """Samples per stage from collapsed-stack lines."""
    totals: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [(match["function"], match["file"]) if (match := FRAME.match(part.strip())) else (part, "")
                  for part in stack.split(";")]
        if frames[-1][0] not in IDLE:
            totals[stage(frames)] += int(count)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.load.stages", description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy --format raw output files")
    args = parser.parse_args(argv)
    totals: collections.Counter[str] = collections.Counter()
    for path in args.profiles:
        try:
            totals += shares(path.read_text().splitlines())
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
            return 2
    samples = sum(totals.values())
    if not samples:
        print(f"{', '.join(map(str, args.profiles))}: no samples of a working thread", file=sys.stderr)
        return 2
    for name, count in totals.most_common():
        print(f"{name:<44}{100 * count / samples:6.1f} %")
    print(f"{'samples':<44}{samples:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
