"""cardswitch as real processes: the files of a one-issuer network on free ports, and the issuer
emulator and switch started from them (`cardswitch issuer`, `cardswitch serve`). Tests get a
`Processes` from the `processes` fixture, which stops whatever still runs when the test ends."""

from __future__ import annotations

import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tools.load.processes import free_port, spawn, stop, toml_text, wait_for_events, wait_for_port

APPROVE = "4761730000000011"
EXPIRY = "3012"


def card(**overrides: Any) -> dict:
    """An issuer-file card that approves: APPROVE, expiry 3012, 1,000,000.00 unless said otherwise."""
    return {"pan": APPROVE, "expiry": EXPIRY, "balance": 100000000, **overrides}


@dataclass(frozen=True)
class Network:
    """The files and ports of a one-issuer network under a test's tmp_path."""

    issuer_port: int
    switch_port: int
    issuer_file: Path
    config: Path
    log: Path  # the switch's JSON log (--log-file)
    data_dir: Path


def one_issuer_network(tmp_path: Path, cards: list[dict], prefix: str = "4", switch: dict | None = None,
                       **issuer: Any) -> Network:
    """Issuer 'bank' holding `cards`, behind a switch routing `prefix` to it, on free ports.

    `switch` goes under [switch] (data_dir is tmp_path/data unless it says otherwise); `issuer`
    are further keys of the switch's [[issuers]] entry (timeout_ms, stand_in, ...)."""
    issuer_port, switch_port = free_port(), free_port()
    issuer_file = tmp_path / "issuer.toml"
    issuer_file.write_text(toml_text({"issuer": {"name": "bank", "port": issuer_port}, "cards": cards}))
    config = tmp_path / "switch.toml"
    config.write_text(toml_text({"switch": {"data_dir": str(tmp_path / "data"), **(switch or {})},
                                 "listeners": [{"name": "terminals", "port": switch_port}],
                                 "issuers": [{"name": "bank", "port": issuer_port, **issuer}],
                                 "routes": [{"prefix": prefix, "issuer": "bank"}]}))
    return Network(issuer_port, switch_port, issuer_file, config, tmp_path / "switch.log", tmp_path / "data")


def cardswitch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`cardswitch ARGS` as a user runs it, to its end: exit code and output."""
    return subprocess.run([sys.executable, "-m", "switch.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@dataclass
class Demo:
    process: subprocess.Popen
    out: str = ""  # what it printed, once it stopped
    err: str = ""


@contextmanager
def demo_serving(*args: str) -> Iterator[Demo]:
    """`cardswitch demo --serve ARGS` for the `with` block, then Ctrl-C (a demo that will not
    stop is killed); its output is on the Demo afterwards."""
    demo = Demo(subprocess.Popen([sys.executable, "-m", "switch.cli", "demo", "--serve", *args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        yield demo
        demo.process.send_signal(signal.SIGINT)
        demo.out, demo.err = demo.process.communicate(timeout=30)
    finally:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait()


def stop_gracefully(process: subprocess.Popen, timeout: float = 15) -> int:
    """SIGTERM, then the exit code (a timeout fails the test)."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


def issuer_args(network: Network) -> list[str]:
    return ["issuer", "--config", str(network.issuer_file)]


def serve_args(network: Network, *args: str) -> list[str]:
    return ["serve", "--config", str(network.config), "--log-file", str(network.log), *args]


class Processes:
    """The cardswitch processes a test started; their output goes to <name>.out beside them."""

    def __init__(self, output_dir: Path):
        self.output_dir = output_dir
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        process = spawn(list(args), self.output_dir / f"{name}.out")
        self.started.append(process)
        return process

    def issuer(self, network: Network) -> subprocess.Popen:
        """The issuer emulator, once it listens."""
        process = self.start("issuer", *issuer_args(network))
        wait_for_port(network.issuer_port, process, "the issuer")
        return process

    def switch(self, network: Network, *args: str) -> subprocess.Popen:
        """`cardswitch serve` (with `args`), once it listens; it may have no link yet."""
        process = self.start("switch", *serve_args(network, *args))
        wait_for_port(network.switch_port, process, "the switch")
        return process

    def issuer_and_switch(self, network: Network, *args: str,
                          links: int = 1) -> tuple[subprocess.Popen, subprocess.Popen]:
        """Both started at once (the switch connects when the issuer listens); returned once both
        listen and `links` links are up (one a worker)."""
        issuer = self.start("issuer", *issuer_args(network))
        switch = self.start("switch", *serve_args(network, *args))
        wait_for_port(network.issuer_port, issuer, "the issuer")
        wait_for_port(network.switch_port, switch, "the switch")
        wait_for_events(network.log, "link_up", links, switch)
        return issuer, switch

    def stop_all(self) -> None:
        """Stop what still runs: SIGTERM, then kill if it will not go."""
        for process in reversed(self.started):
            stop(process)
