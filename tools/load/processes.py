"""The demo network as separate processes, for `cardswitch bench`.

Configs are generated from specs/demo into a scratch directory: free ports, a private data_dir,
metrics on, approve cards with balances that no benchmark can exhaust and no daily limit (and
without the cards a per-card velocity rule limits), and relative paths (key stores, LMK files)
made absolute so they still resolve from there. CPU time is read from
/proc for a process and all its descendants, so `serve --workers N` is measured whole.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import attrs

from emulators.certificates import issue_certificate, make_test_ca
from emulators.network import DEMO_SWITCH, demo_issuer_files
from switch.config import load_config
from switch.core.risk.rules import Velocity
from switch.errors import CardswitchError

BENCH_BALANCE = 10**11
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(CardswitchError):
    """A process of the benchmark network did not start or died."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 now: `demo --serve --port P`
    listens on P and the ports after it, and tests running side by side hold ports too."""
    while True:
        first = free_port()
        sockets = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", first + offset))
            return first
        except (OSError, OverflowError):  # one after it is taken, or past port 65535
            continue
        finally:
            for sock in sockets:
                sock.close()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_text(data: dict[str, Any], prefix: str = "") -> str:
    """TOML for plain data: scalars first, then tables, then arrays of tables."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"\n[{prefix}{key}]\n" + toml_text(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables += [f"\n[[{prefix}{key}]]\n" + toml_text(v, f"{prefix}{key}.") for v in value]
        else:
            bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
            lines.append(f"{key if bare else json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n" + "".join(tables)


def absolute_paths(data: Any, base: Path) -> Any:
    """Strings naming a file next to the source become absolute (dialect names stay names)."""
    if isinstance(data, dict):
        return {k: absolute_paths(v, base) for k, v in data.items()}
    if isinstance(data, list):
        return [absolute_paths(v, base) for v in data]
    if isinstance(data, str) and data and (base / data).is_file():
        return str((base / data).resolve())
    return data


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return absolute_paths(tomllib.load(handle), path.parent)


@attrs.frozen
class NetworkFiles:
    switch_config: Path
    issuer_files: dict[str, Path]
    listener_port: int  # the "terminals" listener (iso87-binary)
    log_dir: Path
    ca: Path | None = None  # with TLS: the CA the "terminals" listener's certificate is from


def generate(scratch: Path, tls: bool = False) -> NetworkFiles:
    """Issuer files and a switch config for the demo network on free ports under `scratch`;
    with `tls` the terminals' listener serves TLS, with a certificate from a CA made here.

    The switch runs what a deployment runs: the demo's risk rules, HSM and journal as
    specs/demo has them, and metrics on (`metrics_port = 0`: a port of the system's choosing, so
    workers do not collide; nothing scrapes it, a scrape every few seconds being nothing per
    transaction beside `observe`, which every transaction pays)."""
    issuers, issuer_ports = {}, {}
    for source in demo_issuer_files():
        data = _read(source)
        name = data["issuer"]["name"]
        issuer_ports[name] = data["issuer"]["port"] = free_port()
        for card in data.get("cards", []):
            if card.get("balance", 0) >= 10_000 and "fault" not in card and "latency_ms" not in card:
                card["balance"] = BENCH_BALANCE
                card.pop("daily_limit", None)
        issuers[name] = data
    config = _read(DEMO_SWITCH)
    config.setdefault("switch", {})["data_dir"] = str(scratch / "data")
    config["switch"]["metrics_port"] = 0
    config["switch"].pop("log_file", None)
    for listener in config["listeners"]:
        listener["port"] = free_port()
    for issuer in config["issuers"]:
        issuer["port"] = issuer_ports[issuer["name"]]
    terminals = next(l for l in config["listeners"] if l.get("dialect", "iso87-binary") == "iso87-binary")
    ca = _secure(terminals, scratch) if tls else None
    switch_config = scratch / "switch.toml"
    switch_config.write_text(toml_text(config))
    limited = per_card_limits(switch_config)
    issuer_files = {}
    for name, data in issuers.items():
        data["cards"] = [card for card in data.get("cards", []) if not limited(card["pan"])]
        issuer_files[name] = scratch / f"{name}.toml"
        issuer_files[name].write_text(toml_text(data))
    (scratch / "logs").mkdir(exist_ok=True)
    return NetworkFiles(switch_config, issuer_files, terminals["port"], scratch / "logs", ca)


def per_card_limits(switch_config: Path) -> Callable[[str], bool]:
    """Whether a PAN is in the BIN scope of one of the switch's per-card velocity rules (the
    demo's `velocity-demo-card`: 2 approvals an hour for one card). Such cards are left out of
    the benchmark: its dozen cards at thousands of TPS would hit any per-card limit at once, and
    a sixth of its requests were declined 65 before reaching an issuer (cheaper than a real
    transaction), where real traffic spread over millions of cards hardly ever is."""
    scopes = [rule.scope.bins for rule in load_config(switch_config).risk.rules
              if isinstance(rule, Velocity) and rule.per == "card" and rule.scope.bins]
    return lambda pan: any(bins.low <= pan[:len(bins.low)] <= bins.high for scope in scopes for bins in scope)


def _secure(listener: dict[str, Any], scratch: Path) -> Path:
    """Put `listener` on TLS with a certificate for 127.0.0.1; returns the CA file to trust."""
    ca = make_test_ca()
    (scratch / "ca.pem").write_bytes(ca.certificate_pem())
    issue_certificate(ca, "cardswitch bench", ("127.0.0.1",)).write(scratch / "server.pem", scratch / "server-key.pem")
    listener["tls"] = {"cert": str(scratch / "server.pem"), "key": str(scratch / "server-key.pem")}
    return scratch / "ca.pem"


def issuer_settings(issuer_file: Path) -> dict[str, Any]:
    """The `[issuer]` table of a generated issuer file (its name, port and dialect)."""
    return tomllib.loads(issuer_file.read_text())["issuer"]


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None, module: str = "switch.cli") -> subprocess.Popen:
    """`cardswitch ARGS` (or `python -m MODULE ARGS`) as a child process, its output to `log`;
    `env` replaces the environment (how a secret such as a journal URL with a password reaches
    it: not on the command line, which every user of the host can read)."""
    with log.open("ab") as output:
        return subprocess.Popen([sys.executable, "-m", module, *args], stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with code {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} not listening on port {port} within {timeout} s")


def wait_for_events(log: Path, event: str, count: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait until the JSON log holds `count` lines of `event` (e.g. link_up per issuer and worker)."""
    deadline = time.monotonic() + timeout
    needle = f'"event":"{event}"'
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the switch exited with code {process.returncode}; see {log}")
        if log.exists() and log.read_text(errors="replace").count(needle) >= count:
            return
        time.sleep(0.05)
    raise BenchError(f"fewer than {count} {event} events in {log} within {timeout} s")


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and all its live descendants."""
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(p)) is not None}
    total, wanted = 0.0, {pid}
    changed = True
    while changed:
        changed = False
        for child, (parent, _) in stats.items():
            if parent in wanted and child not in wanted:
                wanted.add(child)
                changed = True
    for member in wanted:
        if member in stats:
            total += stats[member][1]
    return total
