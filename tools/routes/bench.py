"""`routes bench`: how long a big table takes to build (and load) and how fast lookup is.

The generated table looks like a network BIN file: sorted by BIN, prefixes of 6 to 11 digits
with some ranges, nested and overlapping at random, 50 issuers. Figures are printed, never
asserted: speed is a property of the machine as much as of the code.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from switch.routes import load_routing_file
from switch.routing import RouteEntry, RoutingTable
from tools.routes.totoml import to_toml

ISSUERS = [f"issuer-{number:02d}" for number in range(50)]


def generate(count: int, seed: int) -> list[RouteEntry]:
    """Distinct prefixes, plus aligned blocks of 10 or 100 BINs (so two entries of equal width
    are equal or disjoint, and the table has no conflicts a loader would refuse). The entries'
    strings are made in file order, as a loader makes them: memory locality shows in the build
    time, and a table built from randomly scattered objects would measure the allocator."""
    rng = random.Random(seed)
    spans: dict[tuple[int, int], tuple[int, int, int, str]] = {}  # keyed by the span in 19 digits
    while len(spans) < count:
        digits = rng.randint(6, 11)
        block = rng.choice((1,) * 18 + (10, 100))
        low = rng.randrange(10 ** (digits - 1), 10**digits) // block * block
        scale = 10 ** (19 - digits)
        spans[(low * scale, (low + block) * scale)] = (low, low + block - 1, digits, rng.choice(ISSUERS))
    return [RouteEntry(issuer, str(low).zfill(digits), str(high).zfill(digits), source=f"routes[{index}]")
            for index, (_, (low, high, digits, issuer)) in enumerate(sorted(spans.items()))]


def write_table(entries: list[RouteEntry], path: Path) -> None:
    """As CSV or TOML according to the suffix."""
    if path.suffix == ".csv":
        rows = "".join(f"{entry.low},{entry.high},{entry.issuer}\n" for entry in entries)
        path.write_text("bin_low,bin_high,issuer\n" + rows)
    else:
        path.write_text(to_toml(entries, ISSUERS))


def run(count: int, lookups: int, seed: int, load: str | None) -> list[str]:
    """Report lines: build seconds, lookup microseconds, and file load seconds if asked."""
    entries = generate(count, seed)
    began = time.perf_counter()
    table = RoutingTable(entries)
    built = time.perf_counter() - began
    rng = random.Random(seed + 1)
    pans = [str(rng.randrange(10**15, 10**16)) for _ in range(lookups)]
    began = time.perf_counter()
    for pan in pans:
        table.lookup(pan)
    per_lookup = (time.perf_counter() - began) / max(lookups, 1) * 1e6
    report = [
        f"entries: {count}  segments: {table.segment_count}",
        f"build: {built:.2f} s",
        f"lookup: {per_lookup:.2f} us (mean of {lookups} random 16-digit PANs)",
    ]
    if load:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / f"routes.{load}"
            write_table(entries, path)
            began = time.perf_counter()
            load_routing_file(path)
            report.append(f"load_routing_file ({load}, read + check + build): {time.perf_counter() - began:.2f} s")
    return report
