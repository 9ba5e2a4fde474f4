"""Load results as figures: a JSON-ready summary, the end-of-run text, and the live progress line."""

from __future__ import annotations

import sys
from typing import TextIO

import trio

from tools.load.histogram import Histogram
from tools.load.runner import Results

PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))


def latency_ms(histogram: Histogram) -> dict[str, float]:
    figures = {name: round(histogram.percentile(p) / 1000, 3) for name, p in PERCENTILES}
    figures["max"] = round(histogram.max / 1000, 3)
    figures["mean"] = round(histogram.mean() / 1000, 3)
    return figures


def summary(results: Results) -> dict:
    settings = results.settings
    elapsed = results.elapsed
    return {
        "target": f"{settings.host}:{settings.port}",
        "mode": "closed" if settings.tps is None else "open",
        "offered_tps": settings.tps,
        "connections": settings.connections,
        "elapsed_s": round(elapsed, 3),
        "requests": results.sent,
        "answered": results.answered,
        "tps": round(results.answered / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": latency_ms(results.latency),
        "response_codes": dict(sorted(results.codes.items())),
        "by_kind": {kind: {"requests": histogram.total, "response_codes": dict(sorted(results.kind_codes[kind].items())),
                           "latency_ms": latency_ms(histogram)}
                    for kind, histogram in sorted(results.by_kind.items())},
        "errors": dict(results.errors),
        "lost": results.lost,
        "late": results.late,
        "notes": results.notes,
    }


def problems(figures: dict) -> list[str]:
    """Why the run failed, one line each: nothing lost, no errors, no 94 (duplicate
    transmission: the load generator never retransmits) and no answer nobody waited for."""
    found = []
    if figures["lost"]:
        found.append(f"{figures['lost']} requests lost")
    if figures["errors"]:
        found.append(f"{sum(figures['errors'].values())} errors")
    duplicates = figures["response_codes"].get("94", 0)
    if duplicates:
        found.append(f"{duplicates} answered 94 (duplicate transmission), which a load run never sends")
    unexpected = figures["late"] - figures["lost"]
    if unexpected > 0:
        found.append(f"{unexpected} answers more than requests (duplicate answers)")
    return found


def text(figures: dict) -> str:
    lat = figures["latency_ms"]
    mode = "closed loop" if figures["mode"] == "closed" else f"open loop at {figures['offered_tps']:g} TPS"
    lines = [
        f"target {figures['target']}  {mode}  {figures['connections']} connections  {figures['elapsed_s']:.1f} s",
        f"requests {figures['requests']}  answered {figures['answered']}  lost {figures['lost']}  "
        f"late {figures['late']}  TPS {figures['tps']:.1f}",
        "latency ms  " + "  ".join(f"{name} {lat[name]:.3f}" for name in ("p50", "p90", "p99", "p99.9", "max")),
        "response codes  " + ("  ".join(f"{code}:{n}" for code, n in figures["response_codes"].items()) or "none"),
    ]
    for kind, row in figures["by_kind"].items():
        codes = " ".join(f"{code}:{n}" for code, n in row["response_codes"].items())
        lines.append(f"  {kind:<9} {row['requests']:>8}  p50 {row['latency_ms']['p50']:.3f}  "
                     f"p99 {row['latency_ms']['p99']:.3f} ms  {codes}")
    if figures["errors"]:
        lines.append("errors  " + "  ".join(f"{what}: {n}" for what, n in figures["errors"].items()))
    lines += [f"note: {note}" for note in figures["notes"]]
    return "\n".join(lines)


class Progress:
    """One line on stderr, rewritten in place on a terminal, appended otherwise."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.in_place = stream.isatty()
        self._last = (0.0, 0)

    def __call__(self, results: Results) -> None:

        now = trio.current_time()
        then, answered = self._last
        self._last = (now, results.answered)
        rate = (results.answered - answered) / (now - then) if then else 0.0
        line = (f"{now - results.started:6.1f}s  sent {results.sent}  answered {results.answered}  "
                f"TPS {rate:.0f}  p99 {results.latency.percentile(99) / 1000:.2f} ms  "
                f"in flight {results.outstanding}  lost {results.lost}")
        self.stream.write(f"\r{line}\033[K" if self.in_place else line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.in_place:
            self.stream.write("\n")
            self.stream.flush()
