"""The demo network in one process: the issuer emulators of specs/demo and a switch in front.

Used by `cardswitch demo`, the tests and the benchmarks, so they all exercise the same network.
Issuers always bind ephemeral ports here, and the switch's links are pointed at them.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

from emulators.bank import Bank
from emulators.issuer import IssuerHostConfig, load_issuer_file, serve_issuer
from emulators.terminal import PinKey
from switch.capture.sink import Capture
from switch.config import ListenerConfig, TerminalConfig, load_config
from switch.wire.dialect import Dialect
from switch.hsm.keystore import Keystore
from switch.hsm.validation import insecure_key_hex
from switch.errors import ConfigError
from switch.hsm.lmk import KeyType, load_lmk
from switch.service import Switch
from switch.tls import TlsConfig

DEMO_DIR = Path(__file__).resolve().parents[1] / "specs" / "demo"
DEMO_SWITCH = DEMO_DIR / "switch.toml"
DEMO_KEYS = DEMO_DIR / "keys.toml"
DEMO_LMK = DEMO_DIR / "lmk-insecure.txt"  # published, INSECURE: demo and tests only
DEMO_TPK = "tpk.demo"


@attrs.define
class Network:
    switch: Switch
    ports: dict[str, int]  # listener name -> bound port
    issuers: dict[str, tuple[IssuerHostConfig, Bank]]
    issuer_ports: dict[str, int]


def terminal_pin_key(keys: Path = DEMO_KEYS, tpk: str = DEMO_TPK, lmk_file: Path | None = DEMO_LMK) -> PinKey:
    """A terminal's PIN key; by default the demo's (every demo terminal shares `tpk.demo`)."""
    keystore = Keystore.load(keys, load_lmk(lmk_file))
    if tpk not in keystore or keystore.key_type(tpk) is not KeyType.TPK:
        raise ConfigError(keys, f"keys.{tpk}", "a TPK of that name")
    return PinKey(keystore, tpk)


def demo_key_hex(name: str, keys: Path = DEMO_KEYS, lmk_file: Path = DEMO_LMK) -> str:
    """A demo key in clear (hex): the demo's keys are published test keys, so a test terminal may
    hold its TAK in clear (`cardswitch demo --terminals`, `cardswitch terminal --tak`)."""
    return insecure_key_hex(Keystore.load(keys, load_lmk(lmk_file)), name)


def demo_issuer_files() -> list[Path]:
    return sorted((DEMO_DIR / "issuers").glob("*.toml"))


async def start_network(nursery: trio.Nursery, data_dir: Path, *, config: Path = DEMO_SWITCH,
                        issuer_files: list[Path] | None = None,
                        listener_ports: dict[str, int] | None = None,
                        capture: Capture | None = None, metrics_port: int | None = None,
                        admin_port: int | None = None, tls: TlsConfig | None = None,
                        known_terminals: tuple[str, ...] = (), journal: str | None = None,
                        dialect: Dialect | None = None) -> Network:
    """Start issuers and a switch (journal in `data_dir`) in `nursery`; returns once every
    issuer link is up.

    Listeners bind the ports in `listener_ports` (by name), else an ephemeral port; `capture`
    records the switch's terminal traffic (test environments only); `metrics_port` serves
    Prometheus metrics on 127.0.0.1 (0: an ephemeral port, reported as ports["metrics"]);
    `admin_port` likewise the admin port (ports["admin"]). With `tls` every listener serves TLS
    only; with `known_terminals` every listener takes those terminal ids and no others.
    `journal`: a postgresql:// URL for the journal instead of SQLite in `data_dir`; `dialect`:
    what the "terminals" listener speaks instead of its configured one.
    """
    issuers = {}
    issuer_ports = {}
    for path in issuer_files if issuer_files is not None else demo_issuer_files():
        host_config, bank = load_issuer_file(path)
        host_config = attrs.evolve(host_config, port=0)
        issuers[host_config.name] = (host_config, bank)
        issuer_ports[host_config.name] = await nursery.start(serve_issuer, host_config, bank)
    switch_config = load_config(config)
    overrides = dict(issuer_ports)
    for listener in switch_config.listeners:
        overrides[listener.name] = (listener_ports or {}).get(listener.name, 0)
    loaded = load_config(config, overrides, data_dir=data_dir)
    if journal is not None:
        loaded = attrs.evolve(loaded, journal=journal)
    if dialect is not None:
        loaded = attrs.evolve(loaded, listeners=tuple(
            attrs.evolve(l, dialect=dialect) if l.name == "terminals" else l for l in loaded.listeners))
    if metrics_port is not None:
        loaded = attrs.evolve(loaded, metrics_port=metrics_port)
    if admin_port is not None:
        loaded = attrs.evolve(loaded, admin_host="127.0.0.1", admin_port=admin_port)
    if tls is not None or known_terminals:
        loaded = attrs.evolve(loaded, listeners=tuple(_restricted(l, tls, known_terminals) for l in loaded.listeners))
    switch = Switch(loaded, capture)
    ports = await nursery.start(switch.run)
    with trio.fail_after(10):
        await switch.wait_links_up()
    return Network(switch=switch, ports=ports, issuers=issuers, issuer_ports=issuer_ports)


def _restricted(listener: ListenerConfig, tls: TlsConfig | None, known: tuple[str, ...]) -> ListenerConfig:
    """`listener` over TLS and for the `known` terminals only, each of those keeping its own TPK."""
    if tls is not None:
        listener = attrs.evolve(listener, tls=tls)
    if known:
        terminals = {tid: listener.terminals.get(tid, TerminalConfig(tid)) for tid in known}
        listener = attrs.evolve(listener, terminals=terminals, only_known_terminals=True)
    return listener
