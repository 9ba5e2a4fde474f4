"""`cardswitch serve --workers N`: N switch processes sharing the listening ports.

Python runs one transaction at a time per process, so a switch uses more cores by running more
processes. Each worker binds the listeners with SO_REUSEPORT (the kernel spreads terminal
connections over them) and keeps its own issuer links; all of them share one journal, which
must be PostgreSQL (switch.stores): it decides duplicates, reversals and PIN tries for all, and
a worker that dies leaves its work to the others (switch.instances). They share the data
directory too, so they seal and hash card data under one data key. The parent only starts the
workers, forwards SIGTERM, SIGINT and SIGHUP to them, and stops the rest if one dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import attrs

from switch import logs
from switch.config import SwitchConfig
from switch.errors import UsageError
from switch.stores import JOURNAL_ENV

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def worker_config(config: SwitchConfig, index: int) -> SwitchConfig:
    """Worker K's view of the config: shared ports and journal, and its own admin and metrics
    ports (admin_port + K, metrics_port + K), since an admin command is for one process and
    each process counts its own transactions; one admin token for all of them."""
    admin_port = config.admin_port + index if config.admin_port else config.admin_port
    metrics_port = config.metrics_port + index if config.metrics_port else config.metrics_port
    return attrs.evolve(config, admin_port=admin_port, admin_token_file=config.admin_token_path,
                        metrics_port=metrics_port,
                        listeners=tuple(attrs.evolve(l, reuse_port=True) for l in config.listeners))


def supervise(config: SwitchConfig, count: int, log_file: str | None) -> int:
    """Run `count` workers until they stop; returns the first non-zero exit code, else 0."""
    ephemeral = [l.name for l in config.listeners if l.port == 0]
    if ephemeral:
        raise UsageError(f"--workers: listeners need fixed ports to share, not 0: {', '.join(ephemeral)}")
    command = [sys.executable, "-m", "switch.cli", "serve", "--config", config.source]
    # The journal's URL (it may hold a password) by the environment, not the command line, which
    # every user of the host can read.
    environment = {**os.environ, JOURNAL_ENV: config.journal} if config.journal else None
    if log_file:
        command += ["--log-file", log_file]
    children: list[subprocess.Popen] = []
    stopping = False

    def forward(signum, _frame) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        for index in range(count):
            children.append(subprocess.Popen(command + ["--worker-index", str(index)], start_new_session=True,
                                         env=environment))
        failed = 0
        while True:
            # Every child's code is read after it ends, the last ones too: workers that all fail
            # at once (a journal out of reach) end within one look of each other.
            codes = [child.poll() for child in children]
            for index, code in enumerate(codes):
                if code not in (None, 0) and not failed and not stopping:
                    failed = code if code > 0 else 128 - code  # killed by a signal: 128 + its number
                    logs.warning("worker_exited", worker=index, code=code)
                    forward(signal.SIGTERM, None)
            if None not in codes:
                return failed
            time.sleep(0.1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
