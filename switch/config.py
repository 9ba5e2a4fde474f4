"""The switch's TOML config, loaded into frozen attrs classes.

One file per deployment: `[switch]` settings, `[[listeners]]` for terminals, `[[issuers]]` for
issuer hosts, and `[[routes]]` (or `routes_file`) for the BIN table. Every mistake is a
`ConfigError` naming file, key and expectation; the CLI turns it into exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from switch.errors import ConfigError
from switch.standin import StandInLimits, parse_stand_in
from switch.routing import RoutingTable, parse_routes
from switch.tomlfile import Table, read_toml
from switch.wire.dialect import Dialect, load_dialect
from switch.wire.framing import DEFAULT_MAX_FRAME, TPDU_LENGTH

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_MATCH_KEY = ("mti", "11", "41")
MATCH_KEY_PARTS = ("mti", "11", "37", "41", "42")


def _port(value: object) -> bool:
    return isinstance(value, int) and 0 <= value <= 65535


@attrs.frozen
class ListenerConfig:
    """Where terminals connect, the dialect they speak, and defaults for their messages."""

    name: str
    host: str
    port: int
    dialect: Dialect
    acquirer_id: str | None = None  # field 32 set on requests that lack it
    max_frame: int = DEFAULT_MAX_FRAME


@attrs.frozen
class IssuerConfig:
    """One issuer host the switch connects out to and keeps connected."""

    name: str
    host: str
    port: int
    dialect: Dialect
    timeout: float = DEFAULT_TIMEOUT_MS / 1000
    match_key: tuple[str, ...] = DEFAULT_MATCH_KEY
    assign_stan: bool = True
    tpdu: bytes = b"\x60\x00\x00\x00\x00"
    reconnect_min: float = 0.1
    reconnect_max: float = 10.0
    max_frame: int = DEFAULT_MAX_FRAME
    sign_on: bool = False  # send 0800/001 after connecting and wait for 0810 00 before use
    echo_interval: float = 30.0  # seconds of silence before an 0800/301 echo
    max_missed_echoes: int = 3  # then the link is dropped and reconnected
    stand_in: StandInLimits | None = None


@attrs.frozen
class SafConfig:
    """Store-and-forward retries: backoff doubles from `backoff_min` to `backoff_max`; after
    `retry_limit` failed attempts an item is parked for an operator."""

    retry_limit: int = 10
    backoff_min: float = 1.0
    backoff_max: float = 60.0


@attrs.frozen
class SwitchConfig:
    listeners: tuple[ListenerConfig, ...]
    issuers: tuple[IssuerConfig, ...]
    routing: RoutingTable
    data_dir: Path = Path("cardswitch-data")
    log_file: str | None = None
    duplicate_window: float = 600.0
    shutdown_grace: float = 5.0
    saf: SafConfig = SafConfig()
    source: str = ""


def _dialect(table: Table, name: str = "dialect") -> Dialect:
    value = table.get(name, str, "iso87-binary", "a dialect name from specs/dialects or a path")
    try:
        return load_dialect(value)
    except ConfigError as exc:
        if exc.key != "dialect":
            raise  # the dialect file exists but is broken: its own error names it
        raise table.error(name, exc.expected) from None


def _listener(table: Table) -> ListenerConfig:
    listener = ListenerConfig(
        name=table.get("name", str, table.where),
        host=table.get("host", str, "127.0.0.1"),
        port=table.get("port", int, expected="a port number from 0 to 65535", check=_port),
        dialect=_dialect(table),
        acquirer_id=table.get("acquirer_id", str, None, "1 to 11 digits",
                              lambda v: v.isdigit() and 1 <= len(v) <= 11),
        max_frame=table.get("max_frame", int, DEFAULT_MAX_FRAME, "bytes, from 64 to 65535",
                            lambda v: 64 <= v <= 65535),
    )
    table.finish()
    return listener


def _issuer(table: Table) -> IssuerConfig:
    match_key = table.get("match_key", list, list(DEFAULT_MATCH_KEY),
                          f"an array of: {', '.join(MATCH_KEY_PARTS)}",
                          lambda v: bool(v) and all(part in MATCH_KEY_PARTS for part in v))
    tpdu = table.get("tpdu", str, "6000000000", f"{TPDU_LENGTH * 2} hex digits",
                     lambda v: len(v) == TPDU_LENGTH * 2 and all(c in "0123456789abcdefABCDEF" for c in v))
    issuer = IssuerConfig(
        name=table.get("name", str, expected="the issuer's name", check=bool),
        host=table.get("host", str, "127.0.0.1"),
        port=table.get("port", int, expected="a port number from 1 to 65535", check=lambda v: _port(v) and v > 0),
        dialect=_dialect(table),
        timeout=table.get("timeout_ms", int, DEFAULT_TIMEOUT_MS, "milliseconds, at least 1",
                          lambda v: v >= 1) / 1000,
        match_key=tuple(match_key),
        assign_stan=table.get("assign_stan", bool, True),
        tpdu=bytes.fromhex(tpdu),
        reconnect_min=table.get("reconnect_min_ms", int, 100, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        reconnect_max=table.get("reconnect_max_ms", int, 10000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        max_frame=table.get("max_frame", int, DEFAULT_MAX_FRAME, "bytes, from 64 to 65535",
                            lambda v: 64 <= v <= 65535),
        sign_on=table.get("sign_on", bool, False),
        echo_interval=table.get("echo_interval_ms", int, 30000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        max_missed_echoes=table.get("max_missed_echoes", int, 3, "an integer, at least 1", lambda v: v >= 1),
        stand_in=parse_stand_in(table.table("stand_in")),
    )
    table.finish()
    return issuer


def _routing(top: Table, base: Path, issuer_names: set[str]) -> RoutingTable:
    routes_file = top.get("routes_file", str, None, "a path to a routes TOML file")
    if routes_file is None:
        return parse_routes(top.file, top.get("routes", list, [], "an array of tables ([[routes]])"), issuer_names)
    if "routes" in top.data:
        raise top.error("routes_file", "either routes_file or [[routes]], not both")
    path = base / routes_file
    return parse_routes(path, read_toml(path).get("routes"), issuer_names)


def load_config(path: str | Path, overrides: dict[str, int] | None = None,
                data_dir: str | Path | None = None) -> SwitchConfig:
    """Load and validate a switch config.

    `overrides` maps listener or issuer names to ports, for the demo and tests that run a
    network on ports chosen at run time; `data_dir` replaces the configured data directory.
    """
    path = Path(path)
    top = Table(path, "", read_toml(path))
    settings = top.table("switch")
    log_file = settings.get("log_file", str, None, "a file path")
    configured_dir = path.parent / settings.get("data_dir", str, "cardswitch-data", "a directory path")
    data_dir = Path(data_dir) if data_dir is not None else configured_dir
    duplicate_window = settings.get("duplicate_window_s", (int, float), 600, "seconds, 0 or more", lambda v: v >= 0)
    shutdown_grace = settings.get("shutdown_grace_ms", int, 5000, "milliseconds, 0 or more", lambda v: v >= 0) / 1000
    saf_table = settings.table("saf")
    saf = SafConfig(
        retry_limit=saf_table.get("retry_limit", int, 10, "an integer, at least 1", lambda v: v >= 1),
        backoff_min=saf_table.get("backoff_min_ms", int, 1000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        backoff_max=saf_table.get("backoff_max_ms", int, 60000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
    )
    saf_table.finish()
    settings.finish()
    listeners = tuple(_listener(t) for t in top.tables("listeners"))
    issuers = tuple(_issuer(t) for t in top.tables("issuers"))
    if not listeners:
        raise top.error("listeners", "at least one [[listeners]] table")
    names = [issuer.name for issuer in issuers]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise top.error("issuers", f"unique names, but {duplicate!r} appears twice")
    routing = _routing(top, path.parent, set(names))
    top.finish()
    if overrides:
        listeners = tuple(attrs.evolve(l, port=overrides.get(l.name, l.port)) for l in listeners)
        issuers = tuple(attrs.evolve(i, port=overrides.get(i.name, i.port)) for i in issuers)
    return SwitchConfig(listeners=listeners, issuers=issuers, routing=routing, data_dir=data_dir,
                        log_file=log_file, duplicate_window=duplicate_window,
                        shutdown_grace=shutdown_grace, saf=saf, source=str(path))
