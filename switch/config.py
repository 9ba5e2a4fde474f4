"""The switch's TOML config, loaded into frozen attrs classes.

One file per deployment: `[switch]` settings, `[hsm]` (how to reach the HSM, which key store),
`[[listeners]]` for terminals (with `[[listeners.terminals]]` they know), `[[issuers]]` for
issuer hosts (with their PIN keys and optional `[issuers.verify]`), `[[routes]]` (or
`routes_file`) for the BIN table, and a `tls` table on any listener, issuer or the HSM. Every
mistake is a `ConfigError` naming file, key and expectation; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Literal, overload

import attrs

from switch.admintoken import TOKEN_FILE
from switch.errors import ConfigError
from switch.hsm.pinverify import DEFAULT_DECTAB
from switch.core.risk.rules import RuleSet
from switch.core.standin import StandInLimits
from switch.core.terminals import KnownTerminals, Network
from switch.risk import load_rules
from switch.routes import load_routing_file
from switch.routing import RoutingTable
from switch.stores import is_postgres_url
from switch.tls import CLIENT_CERTS, MIN_VERSIONS, TlsConfig, TlsError, client_context, server_context
from switch.tomlfile import Table, read_toml
from switch.wire.dialect import Dialect, load_dialect
from switch.wire.framing import DEFAULT_MAX_FRAME, FramingError
from switch.wire.macs import check_dialect

DEFAULT_TIMEOUT_MS = 5000
DEFAULT_HSM_TIMEOUT_MS = 1000
HSM_MODES = ("in-process", "tcp")
PIN_METHODS = ("ibm", "pvv")
PIN_FORMATS = (0, 1, 3)  # ISO 9564 formats a TDES zone PIN key carries
DEFAULT_MATCH_KEY = ("mti", "11", "41")
MATCH_KEY_PARTS = ("mti", "11", "37", "41", "42")
DEFAULT_MAX_IN_FLIGHT = 2000  # requests the switch processes at once; beyond, 0100/0200 get 91
DEFAULT_IDLE_TIMEOUT_MS = 300_000  # a terminal connection with nothing in flight and nothing received
DEFAULT_FRAME_TIMEOUT_MS = 10_000  # a frame started and not completed (slow loris)
DEFAULT_MAX_CONNECTIONS = 1000  # per listener; beyond, a new connection is closed at once


def _port(value: object) -> bool:
    return isinstance(value, int) and 0 <= value <= 65535


@attrs.frozen
class TerminalConfig:
    """One `[[listeners.terminals]]` table: a terminal the listener knows by its id (field 41)."""

    tid: str
    tpk: str | None = None  # its own TPK; None: the listener's
    tak: str | None = None  # key store name of its MAC key
    mac: bool = False  # its requests must carry a MAC under `tak` (else 63); its responses get one
    subject: str | None = None  # the common name its client certificate must have (TLS)
    peers: tuple[Network, ...] = ()  # the addresses it may connect from; () any


@attrs.frozen
class ListenerConfig:
    """Where terminals connect, the dialect they speak, defaults for their messages, and who may
    send there (`known`: None when the listener checks nobody, as by default)."""

    name: str
    host: str
    port: int
    dialect: Dialect
    acquirer_id: str | None = None  # field 32 set on requests that lack it
    max_frame: int = DEFAULT_MAX_FRAME
    tpk: str | None = None  # key store name of the zone TPK its terminals encrypt PINs under
    terminals: dict[str, TerminalConfig] = attrs.field(factory=dict)  # by terminal id
    only_known_terminals: bool = False  # terminals not in `terminals` get 58
    allowed_acquirers: frozenset[str] | None = None  # field 32 values accepted; None: any
    tls: TlsConfig | None = None  # terminals connect over TLS (and only so)
    reuse_port: bool = False  # set by `serve --workers`: processes share the port (SO_REUSEPORT)
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT_MS / 1000  # seconds without a request in flight or a byte in
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT_MS / 1000  # seconds a started frame (or a TLS handshake) may take
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # open terminal connections on this listener
    known: KnownTerminals | None = attrs.field(init=False)

    @known.default
    def _known(self) -> KnownTerminals | None:
        constrained = any(t.subject is not None or t.peers for t in self.terminals.values())
        if not (self.only_known_terminals or self.allowed_acquirers is not None or constrained):
            return None
        return KnownTerminals(self.terminals, self.only_known_terminals, self.allowed_acquirers)

    def tpk_for(self, tid: str) -> str | None:
        terminal = self.terminals.get(tid)
        return terminal.tpk if terminal is not None and terminal.tpk is not None else self.tpk


@attrs.frozen
class CardData:
    """What an issuer shares so the switch can verify PINs on its behalf (never the PIN)."""

    pvki: int = 1
    pvv: str | None = None
    ibm_offset: str | None = None
    pin_length: int = 4
    validation_data: str | None = None  # payShield's 12 characters; default PAN[:11] + "N"


@attrs.frozen
class VerifyConfig:
    """Checks the switch makes on an issuer's behalf; each is off unless configured."""

    pin: str | None = None  # "ibm" (IBM 3624 offset) or "pvv" (Visa PVV)
    pvk: str | None = None
    cvv: bool = False  # CVV in track 2 (iCVV when the entry mode is chip, 05x)
    cvv2: bool = False  # field 48 tag 92
    cvk: str | None = None
    max_pin_tries: int = 3  # wrong PINs in a row per card, then 75
    dectab: str = DEFAULT_DECTAB
    cards: dict[str, CardData] = attrs.field(factory=dict, repr=False)  # PAN -> shared card data


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
    # The network header of the switch's requests (switch.wire.headers): the dialect's own default.
    header: bytes = attrs.field(default=attrs.Factory(lambda self: self.dialect.framing.header.default, takes_self=True))
    reconnect_min: float = 0.1
    reconnect_max: float = 10.0
    max_frame: int = DEFAULT_MAX_FRAME
    sign_on: bool = False  # send 0800/001 after connecting and wait for 0810 00 before use
    echo_interval: float = 30.0  # seconds of silence before an 0800/301 echo
    max_missed_echoes: int = 3  # then the link is dropped and reconnected
    stand_in: StandInLimits | None = None
    zpk: str | None = None  # key store name of the zone PIN key shared with this issuer
    pin_format: int = 0  # ISO 9564 format of the PIN blocks it receives
    verify: VerifyConfig | None = None
    max_in_flight: int | None = None  # requests waiting on this link; beyond, stand-in or 91
    zak: str | None = None  # key store name of the zone MAC key shared with this issuer
    mac: bool = False  # requests are MACed under `zak`, responses must verify under it
    zmk: str | None = None  # key store name of the zone master key: new ZPKs and ZAKs come under it
    tls: TlsConfig | None = None  # the link runs over TLS


@attrs.frozen
class HsmConfig:
    """How the switch reaches its HSM, and the key store it names keys from.

    `keys` holds the store's LMK-encrypted keys by name (never a clear key); the LMK itself is
    read only by the in-process HSM, at start-up."""

    mode: str = "in-process"
    host: str = "127.0.0.1"
    port: int = 1500
    timeout: float = DEFAULT_HSM_TIMEOUT_MS / 1000
    keys_file: Path | None = None
    lmk_file: Path | None = None  # None: $CARDSWITCH_LMK
    key_types: dict[str, str] = attrs.field(factory=dict, repr=False)  # name -> ZPK, TPK ...
    # name -> LMK-encrypted key: the running switch's working keys. An issuer's key change
    # (0800/101, switch.keychange) replaces its ZPK's or ZAK's entry here, in memory.
    keys: dict[str, str] = attrs.field(factory=dict, repr=False)
    tls: TlsConfig | None = None  # mode "tcp": host commands over TLS


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
    journal: str | None = None  # a postgresql:// URL: the journal shared by instances; None: SQLite in data_dir
    instance_lease: float = 10.0  # seconds without a heartbeat before another instance takes over its work
    cutover: datetime.time = datetime.time(0, 0)  # UTC: when the business date moves to the next day
    log_file: str | None = None
    duplicate_window: float = 600.0
    shutdown_grace: float = 5.0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    admin_host: str = "127.0.0.1"
    admin_port: int | None = None  # operator commands (switch.admin); off unless set
    admin_token_file: Path | None = None  # None: data_dir/admin.token (workers share their parent's)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # Prometheus GET /metrics (switch.metrics); off unless set
    saf: SafConfig = SafConfig()
    hsm: HsmConfig | None = None  # None: no [hsm] section, PIN blocks pass through untouched
    risk: RuleSet = RuleSet()  # [risk] rules: none unless a rules file is named
    source: str = ""

    @property
    def admin_token_path(self) -> Path:
        return self.admin_token_file or self.data_dir / TOKEN_FILE


def _dialect(table: Table, name: str = "dialect") -> Dialect:
    value = table.get(name, str, "iso87-binary", "a dialect name from specs/dialects or a path")
    try:
        return load_dialect(value)
    except ConfigError as exc:
        if exc.key != "dialect":
            raise  # the dialect file exists but is broken: its own error names it
        raise table.error(name, exc.expected) from None


def _optional(required: bool) -> dict:
    """`Table.get` keyword arguments: no default when the key is required."""
    return {} if required else {"default": None}


@overload
def _key_name(table: Table, name: str, key_type: str, hsm: HsmConfig | None, required: Literal[True]) -> str: ...
@overload
def _key_name(table: Table, name: str, key_type: str, hsm: HsmConfig | None, required: bool = False) -> str | None: ...


def _key_name(table: Table, name: str, key_type: str, hsm: HsmConfig | None, required: bool = False) -> str | None:
    """A key store name of the given type, checked against the [hsm] key store."""
    value = table.get(name, str, **_optional(required), expected=f"the name of a {key_type} key in the key store")
    if value is None:
        return None
    if hsm is None or hsm.keys_file is None:
        raise table.error(name, 'a key store to name keys from: [hsm] keys = "path"')
    if hsm.key_types.get(value) != key_type:
        raise table.error(name, f"the name of a {key_type} key in {hsm.keys_file}")
    return value


def _key_store(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Key types and LMK-encrypted keys by name, read without the LMK (the HSM checks them)."""
    store = Table(path, "", read_toml(path))
    types, encrypted = {}, {}
    for name, entry in store.get("keys", dict, expected="a table of named keys").items():
        key = Table(path, f"keys.{name}", entry)
        types[name] = key.get("type", str, expected="a key type such as ZPK")
        encrypted[name] = key.get("key", str, expected="a key encrypted under the LMK")
    return types, encrypted


def _hsm(top: Table, base: Path) -> HsmConfig | None:
    present = "hsm" in top.data
    table = top.table("hsm")
    keys = table.get("keys", str, None, "the path of an existing key store file, relative to this file",
                     lambda v: (base / v).is_file())
    lmk_file = table.get("lmk_file", str, None, "the path of an existing LMK file, relative to this file",
                         lambda v: (base / v).is_file())
    key_types, encrypted = _key_store(base / keys) if keys else ({}, {})
    hsm = HsmConfig(
        mode=table.get("mode", str, "in-process", f"one of: {', '.join(HSM_MODES)}", lambda v: v in HSM_MODES),
        host=table.get("host", str, "127.0.0.1"),
        port=table.get("port", int, 1500, "a port number from 1 to 65535", lambda v: _port(v) and v > 0),
        timeout=table.get("timeout_ms", int, DEFAULT_HSM_TIMEOUT_MS, "milliseconds, at least 1",
                          lambda v: v >= 1) / 1000,
        keys_file=base / keys if keys else None,
        lmk_file=base / lmk_file if lmk_file else None,
        key_types=key_types,
        keys=encrypted,
        tls=parse_tls(table, base, server_side=False),
    )
    if hsm.tls is not None and hsm.mode != "tcp":
        raise table.error("tls", 'mode = "tcp": the in-process HSM has no link to secure')
    table.finish()
    return hsm if present else None


def parse_tls(parent: Table, base: Path, *, server_side: bool) -> TlsConfig | None:
    """The `tls` table under `parent` (None without one), its files relative to `base`. The
    context it describes is built here once, so a certificate that does not load, a key that is
    not the certificate's own or an unusable CA file stops the switch at start (exit 2) with the
    file and the key named, not at the first handshake."""
    if "tls" not in parent.data:
        return None
    table = parent.table("tls")

    def path(name: str, what: str) -> Path | None:
        value = table.get(name, str, None, f"the path of an existing {what} file, relative to this file",
                          lambda v: (base / v).is_file())
        return base / value if value is not None else None

    versions = ", ".join(f'"{version}"' for version in MIN_VERSIONS)
    config = TlsConfig(
        cert=path("cert", "PEM certificate"),
        key=path("key", "PEM private key"),
        ca=path("ca", "PEM CA certificates"),
        min_version=table.get("min_version", str, "1.2", f"one of: {versions}", lambda v: v in MIN_VERSIONS),
    )
    if server_side:
        config = attrs.evolve(config, client_certs=table.get(
            "client_certs", str, "none", f"one of: {', '.join(CLIENT_CERTS)}", lambda v: v in CLIENT_CERTS))
    else:
        config = attrs.evolve(config, server_name=table.get(
            "server_name", str, None, "the host name the server's certificate must carry", bool))
    table.finish()
    try:
        server_context(config) if server_side else client_context(config)
    except TlsError as exc:
        raise table.error(exc.key, exc.expected) from None
    return config


def _terminal(table: Table, hsm: HsmConfig | None, dialect: Dialect) -> TerminalConfig:
    """One `[[listeners.terminals]]` table: the terminal's id and what it comes with."""
    mac = table.get("mac", bool, False)
    terminal = TerminalConfig(
        tid=table.get("tid", str, expected="a terminal id (field 41), 1 to 8 characters",
                      check=lambda v: 1 <= len(v) <= 8),
        tpk=_key_name(table, "tpk", "TPK", hsm),
        tak=_key_name(table, "tak", "TAK", hsm, required=mac),
        mac=mac,
        subject=table.get("subject", str, None, "the common name of the terminal's client certificate", bool),
        peers=_networks(table, "peer"),
    )
    if mac:
        _mac_dialect(table, dialect)
    table.finish()
    return terminal


def _mac_dialect(table: Table, dialect: Dialect) -> None:
    """mac = true needs a dialect whose fields 64 and 128 can carry a MAC."""
    try:
        check_dialect(dialect)
    except ValueError as exc:
        raise table.error("mac", f"a dialect that carries MACs; {dialect.name}: {exc}") from None


def _networks(table: Table, name: str) -> tuple[Network, ...]:
    """An IP address or network (CIDR), or an array of them."""
    expected = "an IP address or network (CIDR, e.g. 10.1.0.0/16), or an array of them"
    value = table.get(name, (str, list), None, expected)
    if value is None:
        return ()
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in ([value] if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise table.error(name, expected) from None


def _terminals(table: Table, hsm: HsmConfig | None, tls: TlsConfig | None,
               dialect: Dialect) -> dict[str, TerminalConfig]:
    """The listener's known terminals by id; one that names a certificate subject needs a
    listener that asks for client certificates."""
    terminals: dict[str, TerminalConfig] = {}
    for entry in table.tables("terminals"):
        terminal = _terminal(entry, hsm, dialect)
        if terminal.tid in terminals:
            raise entry.error("tid", f"a terminal id not listed before on this listener, not {terminal.tid!r} again")
        if terminal.subject is not None and (tls is None or tls.client_certs == "none"):
            raise entry.error("subject", 'a listener asking for client certificates ([listeners.tls] '
                                         'client_certs = "optional" or "required")')
        terminals[terminal.tid] = terminal
    return terminals


def _listener(table: Table, hsm: HsmConfig | None, base: Path) -> ListenerConfig:
    tls = parse_tls(table, base, server_side=True)
    dialect = _dialect(table)
    terminals = _terminals(table, hsm, tls, dialect)
    only_known = table.get("only_known_terminals", bool, False)
    if only_known and not terminals:
        raise table.error("only_known_terminals", "[[listeners.terminals]] tables naming the terminals it knows")
    acquirers = table.get("allowed_acquirers", list, None, "an array of acquirer ids (field 32), 1 to 11 digits",
                          lambda v: all(isinstance(a, str) and a.isdigit() and 1 <= len(a) <= 11 for a in v))
    listener = ListenerConfig(
        name=table.get("name", str, table.where),
        host=table.get("host", str, "127.0.0.1"),
        port=table.get("port", int, expected="a port number from 0 to 65535", check=_port),
        dialect=dialect,
        acquirer_id=table.get("acquirer_id", str, None, "1 to 11 digits",
                              lambda v: v.isdigit() and 1 <= len(v) <= 11),
        max_frame=table.get("max_frame", int, DEFAULT_MAX_FRAME, "bytes, from 64 to 65535",
                            lambda v: 64 <= v <= 65535),
        tpk=_key_name(table, "tpk", "TPK", hsm),
        terminals=terminals,
        only_known_terminals=only_known,
        allowed_acquirers=frozenset(acquirers) if acquirers is not None else None,
        tls=tls,
        idle_timeout=table.get("idle_timeout_ms", int, DEFAULT_IDLE_TIMEOUT_MS, "milliseconds, at least 1",
                               lambda v: v >= 1) / 1000,
        frame_timeout=table.get("frame_timeout_ms", int, DEFAULT_FRAME_TIMEOUT_MS, "milliseconds, at least 1",
                                lambda v: v >= 1) / 1000,
        max_connections=table.get("max_connections", int, DEFAULT_MAX_CONNECTIONS, "an integer, at least 1",
                                  lambda v: v >= 1),
    )
    table.finish()
    return listener


def _card_data(path: Path, method: str) -> dict[str, CardData]:
    """`[[cards]]` with the values PIN verification needs; other keys are ignored, so an
    issuer's card file can be shared as it is."""
    top = Table(path, "", read_toml(path))
    cards = {}
    for card in top.tables("cards"):
        pan = card.get("pan", str, expected="12 to 19 digits", check=lambda v: v.isdigit() and 12 <= len(v) <= 19)
        cards[pan] = CardData(
            pvki=card.get("pvki", int, 1, "a digit, 0 to 9", lambda v: 0 <= v <= 9),
            pvv=card.get("pvv", str, **_optional(method == "pvv"), expected="4 digits",
                         check=lambda v: v.isdigit() and len(v) == 4),
            ibm_offset=card.get("ibm_offset", str, **_optional(method == "ibm"), expected="4 to 12 digits",
                                check=lambda v: v.isdigit() and 4 <= len(v) <= 12),
            pin_length=card.get("pin_length", int, 4, "4 to 12", lambda v: 4 <= v <= 12),
            validation_data=card.get("validation_data", str, None, "12 characters: hex digits, at most one N",
                                     lambda v: len(v) == 12 and v.count("N") <= 1
                                     and all(c in "0123456789ABCDEFN" for c in v)),
        )
    return cards


def _verify(table: Table, base: Path, hsm: HsmConfig | None) -> VerifyConfig | None:
    present = "verify" in table.data
    verify = table.table("verify")
    pin = verify.get("pin", str, None, f"one of: {', '.join(PIN_METHODS)}", lambda v: v in PIN_METHODS)
    cvv = verify.get("cvv", bool, False)
    cvv2 = verify.get("cvv2", bool, False)
    card_data = verify.get("card_data", str, **_optional(pin is not None),
                           expected="the path of a card data file ([[cards]] with pan, pvki, pvv or ibm_offset)",
                           check=lambda v: (base / v).is_file())
    config = VerifyConfig(
        pin=pin,
        pvk=_key_name(verify, "pvk", "PVK", hsm, required=pin is not None),
        cvv=cvv,
        cvv2=cvv2,
        cvk=_key_name(verify, "cvk", "CVK", hsm, required=cvv or cvv2),
        max_pin_tries=verify.get("max_pin_tries", int, 3, "an integer from 1 to 99", lambda v: 1 <= v <= 99),
        dectab=verify.get("dectab", str, DEFAULT_DECTAB, "16 decimal digits",
                          lambda v: len(v) == 16 and v.isdigit()),
        cards=_card_data(base / card_data, pin) if pin else {},
    )
    verify.finish()
    return config if present else None


def parse_stand_in(table: Table) -> StandInLimits | None:
    if not table.data:
        return None
    codes = table.get("processing_codes", list, ["00"], "an array of 2-digit processing codes",
                      lambda v: all(isinstance(c, str) and len(c) == 2 and c.isdigit() for c in v))
    mccs = table.get("mccs", list, None, "an array of 4-digit merchant category codes",
                     lambda v: all(isinstance(c, str) and len(c) == 4 and c.isdigit() for c in v))
    positive = lambda v: v >= 0  # noqa: E731
    limits = StandInLimits(
        max_amount=table.get("max_amount", int, expected="minor units, 0 or more", check=positive),
        daily_count=table.get("daily_count", int, expected="transactions per card per day", check=positive),
        daily_amount=table.get("daily_amount", int, expected="minor units per card per day", check=positive),
        processing_codes=frozenset(codes),
        mccs=frozenset(mccs) if mccs is not None else None,
    )
    table.finish()
    return limits


def _network_header(table: Table, dialect: Dialect) -> bytes:
    """`header`: the network header (hex) the switch's requests to this issuer start with, for
    dialects that have one (`tpdu` is its older spelling); the dialect's default when absent."""
    kind = dialect.framing.header
    name = "tpdu" if "tpdu" in table.data and "header" not in table.data else "header"
    if name == "tpdu" and not kind.default:  # as before `header`: a TPDU for links that have none, unused
        table.get("tpdu", str, expected="10 hex digits", check=lambda v: len(v) == 10 and _is_hex(v))
        return b""
    expected = f"hex digits: a {kind.kind} header for dialect {dialect.name}" if kind.default else \
        f"nothing: dialect {dialect.name} has no network header"
    value = table.get(name, str, kind.default.hex(), expected, _is_hex)
    try:
        kind.complete(bytes.fromhex(value), 0)
    except FramingError as exc:
        raise table.error(name, f"{expected} ({exc})") from None
    if bool(value) != bool(kind.default):
        raise table.error(name, expected)
    return bytes.fromhex(value)


def _is_hex(value: str) -> bool:
    return len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value)


def _issuer(table: Table, base: Path, hsm: HsmConfig | None) -> IssuerConfig:
    match_key = table.get("match_key", list, list(DEFAULT_MATCH_KEY),
                          f"an array of: {', '.join(MATCH_KEY_PARTS)}",
                          lambda v: bool(v) and all(part in MATCH_KEY_PARTS for part in v))
    mac = table.get("mac", bool, False)
    dialect = _dialect(table)
    issuer = IssuerConfig(
        name=table.get("name", str, expected="the issuer's name", check=bool),
        host=table.get("host", str, "127.0.0.1"),
        port=table.get("port", int, expected="a port number from 1 to 65535", check=lambda v: _port(v) and v > 0),
        dialect=dialect,
        timeout=table.get("timeout_ms", int, DEFAULT_TIMEOUT_MS, "milliseconds, at least 1",
                          lambda v: v >= 1) / 1000,
        match_key=tuple(match_key),
        assign_stan=table.get("assign_stan", bool, True),
        header=_network_header(table, dialect),
        reconnect_min=table.get("reconnect_min_ms", int, 100, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        reconnect_max=table.get("reconnect_max_ms", int, 10000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        max_frame=table.get("max_frame", int, DEFAULT_MAX_FRAME, "bytes, from 64 to 65535",
                            lambda v: 64 <= v <= 65535),
        sign_on=table.get("sign_on", bool, False),
        echo_interval=table.get("echo_interval_ms", int, 30000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        max_missed_echoes=table.get("max_missed_echoes", int, 3, "an integer, at least 1", lambda v: v >= 1),
        stand_in=parse_stand_in(table.table("stand_in")),
        zpk=_key_name(table, "zpk", "ZPK", hsm),
        pin_format=table.get("pin_format", int, 0, f"one of: {', '.join(map(str, PIN_FORMATS))}",
                             lambda v: v in PIN_FORMATS),
        verify=_verify(table, base, hsm),
        max_in_flight=table.get("max_in_flight", int, None, "an integer, at least 1", lambda v: v >= 1),
        zak=_key_name(table, "zak", "ZAK", hsm, required=mac),
        mac=mac,
        zmk=_key_name(table, "zmk", "ZMK", hsm),
        tls=parse_tls(table, base, server_side=False),
    )
    if issuer.mac:
        _mac_dialect(table, issuer.dialect)
    if issuer.verify is not None and issuer.verify.pin and issuer.zpk is None:
        raise table.error("zpk", "a ZPK name: [issuers.verify] pin checks the PIN block under it")
    table.finish()
    return issuer


def _routing(top: Table, issuer_names: set[str]) -> RoutingTable:
    """The BIN table, inline or in `routes_file` (TOML or CSV), with every check `cardswitch
    routes check` makes: a table with a conflict never starts (or reloads into) a switch."""
    top.get("routes_file", str, None, "a path to a routes file (TOML or CSV)")
    top.get("routes", list, [], "an array of tables ([[routes]])")
    if "routes" in top.data and "routes_file" in top.data:
        raise top.error("routes_file", "either routes_file or [[routes]], not both")
    table = load_routing_file(top.file)
    routes_file = top.data.get("routes_file")
    source = Path(top.file).parent / routes_file if routes_file else Path(top.file)
    defined = f"one of the defined issuers ({', '.join(sorted(issuer_names)) or 'none defined'})"
    for entry in table.entries:
        for key, name in (("issuer", entry.issuer), ("fallback", entry.fallback)):
            if name is not None and name not in issuer_names:
                where = f"{source}:{entry.line}" if entry.line else str(source)
                raise ConfigError(where, f"{entry.source}.{key}", defined)
    return table


def _unique_names(top: Table, key: str, names: list[str]) -> None:
    """Listeners and issuers are known by name (port overrides, logs, the journal): one each."""
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise top.error(key, f"unique names, but {duplicate!r} appears twice")


def _is_time_of_day(text: str) -> bool:
    try:
        moment = datetime.time.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 5 and moment.second == 0


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
    journal = settings.get("journal", str, None,
                           "a postgresql:// URL (leave it out for the SQLite journal in data_dir)", is_postgres_url)
    instance_lease = settings.get("instance_lease_ms", int, 10000, "milliseconds, at least 500",
                                  lambda v: v >= 500) / 1000
    cutover = datetime.time.fromisoformat(settings.get("cutover", str, "00:00", "a UTC time of day, HH:MM",
                                                       _is_time_of_day))
    duplicate_window = settings.get("duplicate_window_s", (int, float), 600, "seconds, 0 or more", lambda v: v >= 0)
    shutdown_grace = settings.get("shutdown_grace_ms", int, 5000, "milliseconds, 0 or more", lambda v: v >= 0) / 1000
    max_in_flight = settings.get("max_in_flight", int, DEFAULT_MAX_IN_FLIGHT, "an integer, at least 1",
                                 lambda v: v >= 1)
    admin_host = settings.get("admin_host", str, "127.0.0.1", "a host address to bind")
    admin_port = settings.get("admin_port", int, None, "a port number from 0 to 65535", lambda v: 0 <= v <= 65535)
    metrics_host = settings.get("metrics_host", str, "127.0.0.1", "a host address to bind")
    metrics_port = settings.get("metrics_port", int, None, "a port number from 0 to 65535",
                                lambda v: 0 <= v <= 65535)
    saf_table = settings.table("saf")
    saf = SafConfig(
        retry_limit=saf_table.get("retry_limit", int, 10, "an integer, at least 1", lambda v: v >= 1),
        backoff_min=saf_table.get("backoff_min_ms", int, 1000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
        backoff_max=saf_table.get("backoff_max_ms", int, 60000, "milliseconds, at least 1", lambda v: v >= 1) / 1000,
    )
    saf_table.finish()
    settings.finish()
    hsm = _hsm(top, path.parent)
    listeners = tuple(_listener(t, hsm, path.parent) for t in top.tables("listeners"))
    issuers = tuple(_issuer(t, path.parent, hsm) for t in top.tables("issuers"))
    if not listeners:
        raise top.error("listeners", "at least one [[listeners]] table")
    _unique_names(top, "listeners", [listener.name for listener in listeners])
    names = [issuer.name for issuer in issuers]
    _unique_names(top, "issuers", names)
    routing = _routing(top, set(names))
    risk = read_risk_rules(top, set(names))
    top.finish()
    if overrides:
        listeners = tuple(attrs.evolve(l, port=overrides.get(l.name, l.port)) for l in listeners)
        issuers = tuple(attrs.evolve(i, port=overrides.get(i.name, i.port)) for i in issuers)
    return SwitchConfig(listeners=listeners, issuers=issuers, routing=routing, data_dir=data_dir, journal=journal,
                        instance_lease=instance_lease, cutover=cutover,
                        log_file=log_file, duplicate_window=duplicate_window,
                        shutdown_grace=shutdown_grace, max_in_flight=max_in_flight, admin_host=admin_host,
                        admin_port=admin_port, metrics_host=metrics_host, metrics_port=metrics_port,
                        saf=saf, hsm=hsm, risk=risk, source=str(path))


def read_risk_rules(top: Table, issuer_names: set[str]) -> RuleSet:
    """`[risk] rules = FILE` (relative to the config): validated like the routes, at start and
    on every reload; rules scoped to issuers the config does not define are refused."""
    table = top.table("risk")
    rules_file = table.get("rules", str, None, "a path to a risk rules file (TOML)")
    table.finish()
    if rules_file is None:
        return RuleSet()
    rules = load_rules(Path(top.file).parent / rules_file)
    for rule in rules.rules:
        unknown = sorted(rule.scope.issuers - issuer_names)
        if unknown:
            where = f"{rules.source}:{rule.line}" if rule.line else rules.source
            raise ConfigError(where, f"rules.{rule.name}.issuers",
                              f"issuers the switch defines ({', '.join(sorted(issuer_names)) or 'none'}), "
                              f"not {', '.join(unknown)}")
    return rules
