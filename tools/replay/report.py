"""How replay results are shown: per-message diffs, a summary table, JUnit XML, a progress bar.

Everything here prints masked values only: diffs come masked from compare, and a request is
named by connection, sequence number, MTI, STAN and masked PAN.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import TextIO

from switch.core.messages import card_pan
from switch.wire.masking import mask_pan
from tools.replay.engine import MATCHED, MISMATCHED, UNANSWERED, Result

STATUSES = (MATCHED, MISMATCHED, UNANSWERED)


def title(result: Result) -> str:
    request = result.exchange.request
    pan = card_pan(request)
    card = f" card {mask_pan(pan)}" if pan else ""
    return f"{result.exchange.connection} #{result.exchange.number} {request.mti} STAN {request.get('11', '-')}{card}"


def details(result: Result) -> list[str]:
    dialect = result.exchange.dialect
    lines = [diff.describe(dialect.describe(diff.field) if diff.field != "mti" else "") for diff in result.diffs]
    return lines + ([result.note] if result.note else [])


def describe(result: Result) -> str:
    """A result's header line and, unless it matched cleanly, its indented details."""
    lines = [f"{result.status.upper():<10} {title(result)}"]
    if result.status != MATCHED or result.note:
        lines += [f"    {line}" for line in details(result)]
    return "\n".join(lines)


def summary_table(results: list[Result], seconds: float) -> str:
    """Counts per request MTI and in total."""
    by_mti: dict[str, Counter] = {}
    for result in results:
        by_mti.setdefault(result.exchange.request.mti, Counter())[result.status] += 1
    header = f"{'MTI':<6} {'requests':>8} {'matched':>8} {'mismatched':>10} {'unanswered':>10}"
    rows = [header, "-" * len(header)]
    total: Counter = Counter()
    for mti in sorted(by_mti):
        counts = by_mti[mti]
        total.update(counts)
        rows.append(_row(mti, counts))
    rows += ["-" * len(header), _row("total", total), f"{len(results)} requests in {seconds:.2f} s"]
    return "\n".join(rows)


def _row(label: str, counts: Counter) -> str:
    return (f"{label:<6} {sum(counts.values()):>8} {counts[MATCHED]:>8} {counts[MISMATCHED]:>10} "
            f"{counts[UNANSWERED]:>10}")


def write_junit(path: str | Path, results: list[Result], seconds: float, suite: str = "cardswitch replay") -> None:
    """One testcase per request: a mismatch is a failure, no answer an error."""
    counts = Counter(result.status for result in results)
    root = ET.Element("testsuites")
    testsuite = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                              failures=str(counts[MISMATCHED]), errors=str(counts[UNANSWERED]),
                              skipped="0", time=f"{seconds:.3f}")
    for result in results:
        case = ET.SubElement(testsuite, "testcase", classname=f"replay.{result.exchange.connection}",
                             name=title(result), time=f"{result.seconds:.3f}")
        if result.status == MISMATCHED:
            fields = ", ".join(diff.field for diff in result.diffs)
            ET.SubElement(case, "failure", message=f"fields differ: {fields}", type="mismatch").text = \
                "\n".join(details(result))
        elif result.status == UNANSWERED:
            ET.SubElement(case, "error", message=result.note or "no answer", type="unanswered")
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


class Progress:
    """A one-line progress bar on a terminal; silent when `stream` is not a tty (CI logs)."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty()
        self.counts: Counter = Counter()

    def update(self, result: Result) -> None:
        self.counts[result.status] += 1
        if not self.enabled:
            return
        done = sum(self.counts.values())
        filled = self.WIDTH * done // max(self.total, 1)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total}  matched {self.counts[MATCHED]}  "
                          f"mismatched {self.counts[MISMATCHED]}  unanswered {self.counts[UNANSWERED]}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
