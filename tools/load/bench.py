"""`cardswitch bench`: the demo network as separate processes, measured in one run.

Issuer emulators (`cardswitch issuer`) and the switch (`cardswitch serve [--workers N]`) run as
their own processes, so the switch's CPU time is its own; the load generator runs in this
process. Phases: warm-up, closed loop for `tps_max` (and the switch's CPU per transaction),
open loop at each fixed offered load for latency, then the codec alone on the same mix.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import attrs
import trio

from switch import logs
from tools.load import codec, processes
from tools.load.histogram import Histogram
from tools.load.mix import DEFAULT_MIX, Mix, cards_by_kind, parse_weights, terminal_pin_key
from tools.load.runner import LoadRun, LoadSettings, Results


@attrs.frozen
class BenchOptions:
    phase_seconds: float = 20.0
    warmup_seconds: float = 3.0
    loads: tuple[float, ...] = (200.0, 1000.0)
    workers: tuple[int, ...] = (1,)
    connections: int = 8
    in_flight: int = 4  # closed loop, per connection
    mix: str = DEFAULT_MIX


@attrs.define
class Bench:
    options: BenchOptions
    say: Callable[[str], None]
    files: processes.NetworkFiles | None = None
    lost: int = 0
    mix_notes: list[str] = attrs.Factory(list)

    def _mix(self, seed: int) -> Mix:
        mix = Mix(parse_weights(self.options.mix), cards_by_kind(list(self.files.issuer_files.values())), seed)
        self.mix_notes = mix.notes
        return mix

    def _load(self, seed: int, pin_key, **settings) -> Results:
        load = LoadSettings("127.0.0.1", self.files.listener_port, connections=self.options.connections,
                            pin_key=pin_key, **settings)
        results = trio.run(LoadRun(load, self._mix(seed)).run)
        self.lost += results.lost
        return results

    def run(self) -> dict:
        with tempfile.TemporaryDirectory(prefix="cardswitch-bench-") as scratch:
            self.files = processes.generate(Path(scratch))
            issuers = [processes.spawn(["issuer", "--config", str(path)], self.files.log_dir / f"{name}.log")
                       for name, path in self.files.issuer_files.items()]
            try:
                for process, path in zip(issuers, self.files.issuer_files.values()):
                    port = processes.tomllib.loads(path.read_text())["issuer"]["port"]
                    processes.wait_for_port(port, process, f"issuer {path.stem}")
                return self._measure()
            finally:
                for process in issuers:
                    processes.stop(process)

    def _measure(self) -> dict:
        pin_key = terminal_pin_key() if parse_weights(self.options.mix).get("pin") else None
        scaling, latency = [], {}
        for workers in self.options.workers:
            log = self.files.log_dir / f"switch-{workers}.log"
            args = ["serve", "--config", str(self.files.switch_config), "--log-file", str(log)]
            switch = processes.spawn(args + (["--workers", str(workers)] if workers > 1 else []),
                                     self.files.log_dir / f"switch-{workers}.out")
            try:
                processes.wait_for_events(log, "link_up", len(self.files.issuer_files) * workers, switch)
                processes.wait_for_port(self.files.listener_port, switch, "the switch")
                self.say(f"workers {workers}: warming up")
                self._load(1, pin_key, duration=self.options.warmup_seconds, in_flight=self.options.in_flight)
                self.say(f"workers {workers}: closed loop for tps_max")
                before = processes.tree_cpu_seconds(switch.pid)
                results = self._load(2, pin_key, duration=self.options.phase_seconds, in_flight=self.options.in_flight)
                cpu = processes.tree_cpu_seconds(switch.pid) - before
                scaling.append({"workers": workers, "tps_max": round(results.answered / results.elapsed, 1),
                                "switch_cpu_us_per_txn": round(cpu / max(results.answered, 1) * 1e6, 1)})
                if not latency:
                    for offered in self.options.loads:
                        self.say(f"workers {workers}: open loop at {offered:g} TPS")
                        started = time.time()
                        measured = self._load(3, pin_key, duration=self.options.phase_seconds, tps=offered)
                        inside, added = switch_latency(log, started, time.time())
                        latency[f"{offered:g}"] = {
                            "p50": round(measured.latency.percentile(50) / 1000, 3),
                            "p99": round(measured.latency.percentile(99) / 1000, 3),
                            "switch_p50": round(inside.percentile(50) / 1000, 3),
                            "switch_p99": round(inside.percentile(99) / 1000, 3),
                            "added_p50": round(added.percentile(50) / 1000, 3),
                            "added_p99": round(added.percentile(99) / 1000, 3),
                            "achieved_tps": round(measured.answered / measured.elapsed, 1)}
            finally:
                processes.stop(switch)
        self.say("codec alone")
        prepared = codec.samples(self._mix(4), self.files.switch_config, self.files.issuer_files, pin_key=pin_key)
        codec_us = codec.us_per_txn(prepared)
        first = scaling[0]
        figures = {
            "tps_max": first["tps_max"],
            "latency_ms": latency,
            "switch_cpu_us_per_txn": first["switch_cpu_us_per_txn"],
            "codec_us_per_txn": round(codec_us, 1),
            "ratio": round(first["switch_cpu_us_per_txn"] / codec_us, 2),
            "lost": self.lost,
        }
        if len(scaling) > 1:
            figures["scaling"] = scaling
        return figures


def switch_latency(log: Path, since: float, until: float) -> tuple[Histogram, Histogram]:
    """From the switch's `txn` log lines between two moments: the time per request inside the
    switch (decoded request to answer ready to write), and the part of it the switch adds (the
    same without waiting for the issuer's answer). Neither includes the load generator's own
    queueing."""
    time.sleep(3 * logs.BATCH_INTERVAL)  # the switch writes its log lines in batches
    inside, added = Histogram(), Histogram()
    with log.open() as lines:
        for line in lines:
            if '"event":"txn"' in line:
                event = json.loads(line)
                if since <= event["ts"] <= until:
                    inside.record(int(event["latency_ms"] * 1000))
                    added.record(int((event["latency_ms"] - (event.get("issuer_ms") or 0)) * 1000))
    return inside, added


def table(figures: dict) -> str:
    lines = [f"{'tps_max':<28}{figures['tps_max']:>12.1f}"]
    for offered, row in figures["latency_ms"].items():
        lines.append(f"{'latency_ms @ ' + offered + ' TPS':<28}{'p50 %.3f  p99 %.3f' % (row['p50'], row['p99']):>24}"
                     f"   (achieved {row['achieved_tps']:.1f} TPS)")
        lines.append(f"{'  in the switch':<28}{'p50 %.3f  p99 %.3f' % (row['switch_p50'], row['switch_p99']):>24}"
                     f"   (added by it: p50 {row['added_p50']:.3f}  p99 {row['added_p99']:.3f})")
    lines += [f"{'switch_cpu_us_per_txn':<28}{figures['switch_cpu_us_per_txn']:>12.1f}",
              f"{'codec_us_per_txn':<28}{figures['codec_us_per_txn']:>12.1f}",
              f"{'ratio':<28}{figures['ratio']:>12.2f}",
              f"{'lost':<28}{figures['lost']:>12d}"]
    for row in figures.get("scaling", []):
        lines.append(f"{'workers ' + str(row['workers']):<28}{row['tps_max']:>12.1f} TPS  "
                     f"{row['switch_cpu_us_per_txn']:.1f} us/txn CPU")
    return "\n".join(lines)
