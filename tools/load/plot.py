"""`--plot FILE`: one self-contained HTML page with two inline SVG charts, no plotting library.

Latency over time (p50, p99 and max of the requests sent in each second, with TPS) shows stalls
and warm-up; the percentile curve (x in "nines": 90, 99, 99.9 ...) shows the tail at a glance.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from tools.load.histogram import Histogram
from tools.load.runner import Results

WIDTH, HEIGHT, MARGIN = 760, 300, 50
COLOURS = {"p50": "#1f77b4", "p99": "#d62728", "max": "#7f7f7f", "tps": "#2ca02c"}
CURVE = (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999)


def _scale(values: list[float], low: float, high: float, out_low: float, out_high: float) -> list[float]:
    span = (high - low) or 1.0
    return [out_low + (v - low) / span * (out_high - out_low) for v in values]


def _chart(title: str, xs: list[float], series: dict[str, list[float]], x_labels: Sequence[tuple[float, str]],
           y_unit: str) -> str:
    top = max((max(values) for values in series.values() if values), default=1.0) or 1.0
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    px = _scale(xs, x_low, x_high, MARGIN, WIDTH - 10)
    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<text x="{MARGIN}" y="14" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{MARGIN}" y1="{HEIGHT - 30}" x2="{WIDTH - 10}" y2="{HEIGHT - 30}" stroke="black"/>',
             f'<line x1="{MARGIN}" y1="24" x2="{MARGIN}" y2="{HEIGHT - 30}" stroke="black"/>']
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = HEIGHT - 30 - fraction * (HEIGHT - 54)
        parts.append(f'<text x="2" y="{y + 4:.0f}">{top * fraction:.3g}</text>'
                     f'<line x1="{MARGIN}" y1="{y:.0f}" x2="{WIDTH - 10}" y2="{y:.0f}" stroke="#eee"/>')
    for value, label in x_labels:
        x = _scale([value], x_low, x_high, MARGIN, WIDTH - 10)[0]
        parts.append(f'<text x="{x:.0f}" y="{HEIGHT - 14}" text-anchor="middle">{html.escape(label)}</text>')
    for index, (name, values) in enumerate(series.items()):
        py = _scale(values, 0, top, HEIGHT - 30, 24)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(px, py))
        parts.append(f'<polyline fill="none" stroke="{COLOURS.get(name, "black")}" stroke-width="1.5" points="{points}"/>'
                     f'<text x="{WIDTH - 150 + index * 40}" y="14" fill="{COLOURS.get(name, "black")}">{name}</text>')
    parts.append(f'<text x="{MARGIN + 4}" y="34">{html.escape(y_unit)}</text></svg>')
    return "".join(parts)


def _ms(histogram: Histogram, percent: float) -> float:
    return histogram.percentile(percent) / 1000


def render(results: Results, title: str) -> str:
    seconds = sorted(results.per_second)
    over_time = {name: [_ms(results.per_second[s], p) for s in seconds] for name, p in (("p50", 50), ("p99", 99))}
    over_time["max"] = [results.per_second[s].max / 1000 for s in seconds]
    step = max(1, len(seconds) // 10)
    time_labels = [(s, f"{s}s") for s in seconds[::step]]
    tps = {"tps": [float(results.per_second[s].total) for s in seconds]}
    nines = [-math.log10(1 - p / 100) for p in CURVE]
    curve = {"p": [_ms(results.latency, p) for p in CURVE]}
    curve_labels = [(n, f"{p:g}") for n, p in zip(nines, CURVE) if p in (0, 90, 99, 99.9, 99.99, 99.999)]
    body = [_chart("latency over time (ms, by second sent)", [float(s) for s in seconds], over_time, time_labels, "ms"),
            _chart("requests sent per second", [float(s) for s in seconds], tps, time_labels, "TPS"),
            _chart("latency by percentile (ms)", nines, curve, curve_labels, "ms")]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif'><h2>{html.escape(title)}</h2>"
            + "<br>".join(body) + "</body></html>\n")
