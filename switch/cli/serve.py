"""`cardswitch serve --config FILE`: run listeners and issuer links from one TOML file.

SIGHUP reloads the routing table and the risk rules from the same file, and the TLS
certificates, keys and CAs from theirs; whatever fails validation is refused with a logged
reason and what runs stays.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal

import attrs
import trio

from switch import logs, workers
from switch.capture import sink
from switch.config import load_config
from switch.errors import UsageError
from switch.service import Switch
from switch.stores import JOURNAL_ENV, display_url, is_postgres_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the switch from a TOML config")
    parser.add_argument("--config", required=True, help="switch config (TOML)")
    parser.add_argument("--log-file", help="write JSON log lines here instead of stderr")
    parser.add_argument("--workers", type=int, default=1,
                        help="switch processes sharing the listening ports (SO_REUSEPORT), one per core")
    parser.add_argument("--journal", metavar="URL", default=os.environ.get(JOURNAL_ENV),
                        help=f"a postgresql:// journal shared by instances (overrides [switch] journal; or {JOURNAL_ENV})")
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    sink.add_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    config = load_config(args.config)
    if args.journal is not None:
        if not is_postgres_url(args.journal):
            raise UsageError(f"--journal: expected a postgresql:// URL, got {display_url(args.journal)!r}")
        config = attrs.evolve(config, journal=args.journal)
    logs.configure(args.log_file or config.log_file)
    if args.workers < 1:
        raise UsageError("--workers: expected at least 1")
    if args.workers > 1:
        if args.capture:
            raise UsageError("--workers: a capture needs a single process")
        if config.journal is None:
            raise UsageError(f"--workers {args.workers}: the SQLite journal is one process's; give the workers a shared"
                             " journal ([switch] journal = \"postgresql://...\" or --journal URL)")
        print(startup_line(config, {l.name: l.port for l in config.listeners}, args.workers), flush=True)
        return workers.supervise(config, args.workers, args.log_file)
    if args.worker_index is not None:
        config = workers.worker_config(config, args.worker_index)
    capture = sink.from_args(args)
    try:
        trio.run(serve, config, capture, args.worker_index is None)
    finally:
        if capture is not None:
            capture.close()
    return 0


# Middle-generation collections between two full ones: with one a second (collect_young_objects),
# about 11 days, so in practice a full pass only comes from an explicit gc.collect().
FULL_COLLECTION_EVERY = 1_000_000


YOUNG_COLLECTION_INTERVAL = 0.1  # seconds between collections of the youngest generation
# Net allocations that also trigger one (CPython's default is 700). A request's objects live for
# its milliseconds in flight: at 700 a young collection came every ~14 transactions and found the
# objects of the ~32 in flight alive, promoting them to be scanned again in the middle generation.
# At 5,000 most die first: the collector's time in a 10 s closed loop 0.27-0.33 s -> 0.15 s (about
# 10 µs a transaction here); the clock above still bounds what a young collection scans.
YOUNG_THRESHOLD = 5000


def settle_garbage_collection() -> None:
    """Keep the cycle collector's full passes off the transaction path.

    A full pass scans every live object, and the duplicate window holds 10 minutes of
    transactions: a stall of a large fraction of a second each time a quarter of the heap has
    turned over. The switch's steady state makes no cyclic garbage (tests/test_garbage.py
    checks it), so full passes can be rare; young ones run on a clock (collect_young_objects).
    What start-up built (config, a BIN table of up to millions of entries) is frozen, never
    scanned again. The figures: see docs/performance.md, "Garbage collection".
    """
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, FULL_COLLECTION_EVERY)


async def collect_young_objects() -> None:
    """Young collections on a clock, not only on the allocation count.

    CPython collects the youngest generation when allocations minus deallocations pass a
    threshold. A switch whose duplicate window frees old transactions as fast as it adds new
    ones (or faster, while a bucket of it is taken apart: switch.core.window) keeps that count near
    zero, so survivors pile up in the young generation and the collection that finally comes
    scans them all at once, a stall. Collected every YOUNG_COLLECTION_INTERVAL it holds a few
    hundred; the middle generation follows every tenth time (see docs/performance.md, "Garbage
    collection")."""
    ticks = 0
    while True:
        await trio.sleep(YOUNG_COLLECTION_INTERVAL)
        ticks += 1
        gc.collect(1 if ticks % 10 == 0 else 0)


def startup_line(config, ports: dict[str, int], workers: int = 1) -> str:
    """What `serve` prints once on stdout, whatever the log goes to: listeners with their
    ports (and TLS), issuers, the number of routes, and the admin and metrics ports when on."""
    listeners = ", ".join(f"{l.name} {l.host}:{ports.get(l.name, l.port)}{' (TLS)' if l.tls else ''}"
                          for l in config.listeners)
    parts = [f"cardswitch serving: listeners {listeners}",
             f"issuers {', '.join(i.name for i in config.issuers) or '-'}",
             f"{len(config.routing)} route{'' if len(config.routing) == 1 else 's'}"]
    if config.admin_port is not None:
        parts.append(f"admin {config.admin_host}:{ports.get('admin', config.admin_port)}")
    if config.metrics_port is not None:
        parts.append(f"metrics {config.metrics_host}:{ports.get('metrics', config.metrics_port)}")
    if workers > 1:
        parts.append(f"{workers} workers")
    return "; ".join(parts)


async def serve(config, capture: sink.Capture | None = None, announce: bool = False) -> None:
    """Run the switch until it stops; `announce`: print the start-up line once it listens."""
    switch = Switch(config, capture)
    settle_garbage_collection()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect_young_objects)
        nursery.start_soon(reload_on_sighup, switch)
        nursery.start_soon(shutdown_on_signal, switch, nursery.cancel_scope)
        ports = await nursery.start(switch.run)
        if announce:
            print(startup_line(config, ports), flush=True)
        await switch.stopped.wait()
        nursery.cancel_scope.cancel()


async def shutdown_on_signal(switch: Switch, scope: trio.CancelScope) -> None:
    """SIGTERM or SIGINT: a graceful stop (in-flight transactions finish, the journal is
    flushed); a second signal stops at once."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if switch.stopping:
                scope.cancel()
                return
            logs.event("shutdown_requested", signal=signal.Signals(signum).name)
            switch.shutdown()


async def reload_on_sighup(switch: Switch) -> None:
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        async for _ in signals:
            await switch.reload_routing()
            await switch.reload_risk()
            switch.reload_tls()
