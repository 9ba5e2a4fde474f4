"""`cardswitch demo`: the demo network in one process, and a scripted set of transactions.

Without options it runs the script and prints a table, exiting 0 only when every outcome matched
its expectation. `--serve` keeps the network up for any ISO 8583 client; `--cards` lists the
demo cards, `--terminals` the demo terminals (and the clear TAK of one that must MAC). `--serve --tls` serves terminals over TLS only, with a certificate from a throwaway
CA made at start (its certificate in DATA_DIR/tls/ca.pem for clients to trust), and takes only
the demo's own terminal ids; plain `--serve` takes any terminal id, for newcomers' own clients.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

import attrs
import trio

from emulators.certificates import issue_certificate, make_test_ca
from emulators.issuer import load_issuer_file, serve_issuer
from emulators.network import DEMO_SWITCH, Network, demo_issuer_files, demo_key_hex, start_network, terminal_pin_key
from emulators.terminal import Terminal, TerminalError, open_terminal
from switch import logs
from switch.core import codes
from switch.capture import sink
from switch.cli.serve import shutdown_on_signal
from switch.config import load_config
from switch.cli.recon import report as recon_report
from switch.errors import UsageError
from switch.recon import ReconResult, reconcile
from switch.stores import JOURNAL_ENV, display_url, is_postgres_url
from switch.tls import TlsConfig
from switch.wire.dialect import load_dialect
from switch.wire.masking import mask_pan
from switch.wire.message import Message
from tools.load.processes import absolute_paths, toml_text

EXPIRY = "3012"
DEFAULT_PORT = 8583
LOG_NAME = "switch.log"
RECON_WAIT = 10.0  # seconds the scripted demo waits for SAF to drain before reconciling  # --serve: the log in the data directory, unless --log-file


@attrs.frozen
class Step:
    label: str
    expect: str
    pan: str | None = None
    amount: int = 2500
    mti: str = "0200"
    processing_code: str = "000000"
    terminal: str = "terminals"  # a key of TERMINALS
    pin: str | None = None  # entered on the terminal, sent encrypted under its TPK
    cvv2: str | None = None
    country: str | None = None  # field 19, the acquiring country


SCRIPT = (
    Step("purchase, bank_a (binary dialect)", "00", "4761730000000011"),
    Step("purchase, insufficient funds", "51", "4761730000000029", amount=5000),
    Step("purchase, expired card", "54", "4761730000000037"),
    Step("purchase, lost card", "41", "4761730000000045"),
    Step("authorisation, bank_b (ASCII dialect)", "00", "5200000000000015", mti="0100"),
    Step("purchase, blocked card", "62", "5200000000000023"),
    Step("purchase, unknown BIN", "15", "3700000000000007"),
    Step("purchase, bank_c (BASE24), slow issuer", "00", "6011000000000038"),
    Step("purchase, issuer timeout", "91", "6011000000000020"),
    Step("balance inquiry", "00", "4761730000000011", amount=0, processing_code="310000"),
    Step("unsupported processing code", "12", "4761730000000011", processing_code="500000"),
    Step("purchase over POS TPDU listener", "00", "4761730000000011", terminal="pos"),
    Step("reversal of the first purchase", "00", mti="0400"),
    Step("echo test (0800/301)", "00", mti="0800"),
    # PINs and CVV2s as `cardswitch demo --cards` lists them.
    Step("PIN purchase, PIN verified by the switch", "00", "4761730000000011", pin="1234"),
    Step("PIN purchase, wrong PIN", "55", "4761730000000011", pin="0000"),
    Step("PIN purchase, issuer verifies it (bank_b)", "00", "5200000000000015", pin="9753"),
    Step("card not present, CVV2 correct", "00", "4761730000000011", cvv2="042"),
    Step("card not present, wrong CVV2", "N7", "4761730000000011", cvv2="999"),
    Step("purchase MACed by its terminal (field 64)", "00", "4761730000000011", terminal="mac"),
    # The switch's risk rules (specs/demo/risk.toml).
    Step("velocity card, 1st purchase this hour", "00", "4761730000000060"),
    Step("velocity card, 2nd purchase this hour", "00", "4761730000000060"),
    Step("velocity card, 3rd purchase: velocity rule", "65", "4761730000000060"),
    *(Step(f"card testing: wrong CVV2, card {n} of 5", "N7", pan, terminal="tester", cvv2="999")
      for n, pan in enumerate(("4761730000000011", "4761730000000029", "4761730000000037",
                               "4761730000000045", "4761730000000052"), 1)),
    Step("card testing: next card stopped (60 s)", "59", "4761730000000011", terminal="tester", cvv2="042"),
    Step("purchase acquired in country 408 (denied)", "59", "4761730000000011", country="408"),
)
# The script's terminals: (listener, dialect, terminal id). The tester is a third terminal on the
# main listener, so that card testing's cool-down stops it and nobody else; the fourth must MAC
# its requests (specs/demo/switch.toml's [[listeners.terminals]]).
TERMINALS = {"terminals": ("terminals", "iso87-binary", "T0000001"), "pos": ("pos", "pos-tpdu", "T0000002"),
             "tester": ("terminals", "iso87-binary", "T0000666"), "mac": ("terminals", "iso87-binary", "TMAC0001")}
KNOWN_TERMINALS = tuple(sorted({tid for _, _, tid in TERMINALS.values()}))  # what --serve --tls takes
TLS_HOSTS = ("127.0.0.1", "localhost")  # the names the --serve --tls certificate is valid for


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the demo network and a scripted set of transactions")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true", help="keep the demo network up until Ctrl-C")
    mode.add_argument("--cards", action="store_true", help="list the demo cards")
    mode.add_argument("--terminals", action="store_true",
                      help="list the demo terminals: id, whether it must MAC, its clear TAK (test keys only)")
    parser.add_argument("--port", type=int, help=f"--serve: the terminals' port (default {DEFAULT_PORT})")
    parser.add_argument("--metrics-port", type=int,
                        help="--serve: Prometheus GET /metrics on 127.0.0.1:PORT (default: no metrics)")
    parser.add_argument("--admin-port", type=int,
                        help="--serve: the admin port on 127.0.0.1 (default: a free port, printed at start)")
    parser.add_argument("--tls", action="store_true",
                        help="--serve: terminals over TLS only (CA in DATA_DIR/tls/ca.pem), known terminal ids only")
    parser.add_argument("--json", action="store_true", help="--cards, --terminals: JSON lines")
    parser.add_argument("--log-file", help="JSON logs here (default: DATA_DIR/switch.log with --serve, "
                                           "discarded otherwise)")
    parser.add_argument("--data-dir", help="keep the journal here (default: a temporary directory)")
    parser.add_argument("--journal", metavar="URL",
                        help="the journal on this PostgreSQL database (postgresql://...) instead of SQLite")
    parser.add_argument("--dialect", metavar="NAME",
                        help="--serve: the dialect the terminals' listener speaks (specs/dialects: iso87-bcd, "
                             "iso87-ebcdic ...; default the demo's iso87-binary)")
    parser.add_argument("--workers", type=int, default=1,
                        help="--serve: switch processes sharing the terminals' port (more than 1 needs --journal)")
    sink.add_arguments(parser)
    parser.set_defaults(func=run)


def _refuse_stray_options(args) -> None:
    """Options that only make sense with another one are refused, not ignored."""
    if args.json and not (args.cards or args.terminals):
        raise UsageError("--json: only with --cards or --terminals")
    if args.cards or args.terminals:
        given = [name for name, value in (("--port", args.port), ("--metrics-port", args.metrics_port),
                                          ("--admin-port", args.admin_port), ("--log-file", args.log_file),
                                          ("--data-dir", args.data_dir)) if value is not None]
        if given:
            raise UsageError(f"{given[0]}: not with {'--cards' if args.cards else '--terminals'}")
    if not args.serve:
        for name, value in (("--port", args.port), ("--metrics-port", args.metrics_port),
                            ("--admin-port", args.admin_port), ("--tls", args.tls or None)):
            if value is not None:
                raise UsageError(f"{name}: only with --serve")
    for name, value in (("--port", args.port), ("--metrics-port", args.metrics_port),
                        ("--admin-port", args.admin_port)):
        if value is not None and not 0 <= value <= 65535:
            raise UsageError(f"{name}: expected a port from 0 to 65535")
    if args.dialect is not None:
        if not args.serve:
            raise UsageError("--dialect: only with --serve")
        load_dialect(args.dialect)  # a dialect that does not load: one line naming the known ones
    if args.journal is not None and not is_postgres_url(args.journal):
        raise UsageError(f"--journal: expected a postgresql:// URL, got {display_url(args.journal)!r}")
    if args.workers != 1:
        if not args.serve or args.workers < 1:
            raise UsageError("--workers: a number of switch processes, 2 or more, only with --serve")
        if args.journal is None:
            raise UsageError(f"--workers {args.workers}: the workers share one journal: add --journal postgresql://...")
        given = [name for name, value in (("--tls", args.tls or None), ("--metrics-port", args.metrics_port),
                                          ("--admin-port", args.admin_port), ("--capture", args.capture))
                 if value is not None]
        if given:
            raise UsageError(f"{given[0]}: not with --workers (one process only)")


def run(args) -> int:
    _refuse_stray_options(args)
    if args.cards:
        return list_cards(args.json)
    if args.terminals:
        return list_terminals(args.json)
    if not args.serve:
        logs.configure(args.log_file or os.devnull)
    capture = sink.from_args(args)
    try:
        with tempfile.TemporaryDirectory(prefix="cardswitch-demo-") as scratch:
            data_dir = Path(args.data_dir) if args.data_dir else Path(scratch)
            if not args.serve:
                return trio.run(run_script, data_dir, capture, args.journal)
            data_dir.mkdir(parents=True, exist_ok=True)
            log_file = Path(args.log_file) if args.log_file else data_dir / LOG_NAME
            logs.configure(str(log_file))
            port = DEFAULT_PORT if args.port is None else args.port
            try:
                if args.workers > 1:
                    trio.run(serve_workers, port, data_dir, args.workers, args.journal, log_file, args.dialect)
                else:
                    trio.run(serve, port, data_dir, capture, args.metrics_port,
                             0 if args.admin_port is None else args.admin_port, log_file, args.tls, args.journal,
                             args.dialect)
            finally:
                logs.configure(None)  # close the log file before its directory goes
        if args.serve:
            if args.data_dir:
                print(f"demo: data directory kept at {data_dir}", flush=True)
            else:
                print(f"demo: temporary data directory {data_dir} removed (--data-dir DIR keeps one)",
                      flush=True)
        return 0
    finally:
        if capture is not None:
            capture.close()


def demo_cards() -> list[dict[str, str]]:
    cards = []
    for path in demo_issuer_files():
        config, bank = load_issuer_file(path)
        for account in bank.accounts.values():
            cards.append({"pan": account.pan, "expiry": account.expiry, "issuer": config.name,
                          "pin": str(account.extra.get("pin", "")), "cvv2": str(account.extra.get("cvv2", "")),
                          "outcome": str(account.extra.get("outcome", ""))})
    return cards


def list_cards(as_json: bool) -> int:
    columns = (("PAN", 20, "pan"), ("expiry", 7, "expiry"), ("issuer", 8, "issuer"), ("pin", 5, "pin"),
               ("cvv2", 5, "cvv2"), ("outcome", 0, "outcome"))
    _print_rows(demo_cards(), as_json, "Demo test cards only: their PINs and CVV2s are published.", columns)
    if not as_json:
        print("Unknown BIN (no route, 15): 3700000000000007")
    return 0


def _print_rows(rows: list[dict], as_json: bool, notice: str, columns: tuple[tuple[str, int, str], ...]) -> None:
    """JSON lines, or a table under `notice` with (title, width, key) columns."""
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    print(notice)
    print(" ".join(f"{title:<{width}}" for title, width, _ in columns))
    for row in rows:
        print(" ".join(f"{_shown(row[key]):<{width}}" for _, width, key in columns))


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def demo_terminals() -> list[dict]:
    """The demo terminals: id (field 41), listener, whether it must MAC its requests, and then its
    clear TAK in hex (the demo's published test keys)."""
    listeners = {listener.name: listener for listener in load_config(DEMO_SWITCH).listeners}
    terminals = []
    for listener, _, tid in TERMINALS.values():
        profile = listeners[listener].terminals.get(tid)
        mac = profile is not None and profile.mac
        terminals.append({"terminal": tid, "listener": listener, "mac": mac,
                          "tak": demo_key_hex(profile.tak) if mac and profile and profile.tak else None})
    return terminals


def list_terminals(as_json: bool) -> int:
    columns = (("terminal", 10, "terminal"), ("listener", 10, "listener"), ("mac", 4, "mac"), ("tak", 0, "tak"))
    _print_rows(demo_terminals(), as_json, "Demo test keys only: the TAKs are published.", columns)
    return 0


def make_demo_tls(data_dir: Path) -> TlsConfig:
    """A throwaway CA and a certificate from it for TLS_HOSTS, in DATA_DIR/tls: the CA's
    certificate as ca.pem for clients to trust, the server's as server.pem and server-key.pem
    (mode 0600). The CA's key is never written: nothing else can be issued under it."""
    directory = data_dir / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_test_ca("cardswitch demo CA")
    (directory / "ca.pem").write_bytes(ca.certificate_pem())
    issue_certificate(ca, "cardswitch demo", TLS_HOSTS).write(directory / "server.pem", directory / "server-key.pem")
    return TlsConfig(cert=directory / "server.pem", key=directory / "server-key.pem")


async def serve(port: int, data_dir: Path, capture: sink.Capture | None = None,
                metrics_port: int | None = None, admin_port: int | None = None,
                log_file: Path | None = None, tls: bool = False, journal: str | None = None,
                dialect: str | None = None) -> None:
    secure = make_demo_tls(data_dir) if tls else None
    async with trio.open_nursery() as nursery:
        network = await start_network(nursery, data_dir, listener_ports={"terminals": port}, capture=capture,
                                      metrics_port=metrics_port, admin_port=admin_port, tls=secure,
                                      known_terminals=KNOWN_TERMINALS if tls else (), journal=journal,
                                      dialect=load_dialect(dialect) if dialect else None)
        nursery.start_soon(shutdown_on_signal, network.switch, nursery.cancel_scope)
        for listener in network.switch.config.listeners:
            print(f"listener {listener.name}: {listener.host}:{network.ports[listener.name]} "
                  f"(dialect {listener.dialect.name}{', TLS only' if tls else ''})")
        if secure is not None:
            ca = data_dir / "tls" / "ca.pem"
            print(f"tls: CA certificate {ca} (cardswitch terminal echo --tls --ca {ca}); "
                  f"terminal ids taken: {', '.join(KNOWN_TERMINALS)}")
        if "admin" in network.ports:
            admin = f"127.0.0.1:{network.ports['admin']}"
            print(f"admin: {admin} (cardswitch admin status --admin {admin} --data-dir {data_dir})")
            print(f"admin token: {network.switch.config.admin_token_path}")
        if "metrics" in network.ports:
            print(f"metrics: http://127.0.0.1:{network.ports['metrics']}/metrics (loopback only)")
        print(f"journal: {display_url(journal) if journal else data_dir}", flush=True)
        if log_file is not None:
            print(f"log: {log_file}", flush=True)
            nursery.start_soon(summarise, log_file, network.switch)
        print("demo network up; cards: cardswitch demo --cards; Ctrl-C to stop", flush=True)
        await network.switch.stopped.wait()
        nursery.cancel_scope.cancel()


async def serve_workers(port: int, data_dir: Path, workers: int, journal: str, log_file: Path,
                        dialect: str | None = None) -> None:
    """The demo network with `workers` switch processes on one shared journal: the issuers run
    here, the switch is `cardswitch serve --workers N` on a config written to DATA_DIR (the
    demo's, on fixed ports: the terminals' PORT, the other listeners the ports after it). Ctrl-C
    reaches the switch's supervisor too, which stops its workers gracefully."""
    async with trio.open_nursery() as nursery:
        config = tomllib.loads(DEMO_SWITCH.read_text())
        for name, issuer in ((i["name"], i) for i in config["issuers"]):
            host_config, bank = next(load_issuer_file(path) for path in demo_issuer_files() if path.stem == name)
            issuer["port"] = await nursery.start(serve_issuer, attrs.evolve(host_config, port=0), bank)
        for offset, listener in enumerate(config["listeners"]):
            listener["port"] = port + offset
            if dialect and listener["name"] == "terminals":
                listener["dialect"] = dialect
            print(f"listener {listener['name']}: 127.0.0.1:{listener['port']} (dialect "
                  f"{listener.get('dialect', 'iso87-binary')}, {workers} workers)")
        config.setdefault("switch", {}).update(data_dir=str(data_dir))
        config["switch"].pop("log_file", None)
        path = data_dir / "switch.toml"
        path.write_text(toml_text(absolute_paths(config, DEMO_SWITCH.parent)))
        print(f"journal: {display_url(journal)}\nlog: {log_file}\nswitch config: {path}", flush=True)
        print("demo network up; cards: cardswitch demo --cards; Ctrl-C to stop", flush=True)
        supervisor = await trio.lowlevel.open_process(
            [sys.executable, "-m", "switch.cli", "serve", "--config", str(path), "--workers", str(workers),
             "--log-file", str(log_file)], env={**os.environ, JOURNAL_ENV: journal}, start_new_session=True)
        nursery.start_soon(_pass_on_signals, supervisor)
        await supervisor.wait()
        nursery.cancel_scope.cancel()
    if supervisor.returncode:
        raise UsageError(f"the switch's workers stopped with exit code {supervisor.returncode} (see {log_file})")


async def _pass_on_signals(process: trio.Process) -> None:
    """Ctrl-C or SIGTERM to the demo: to the switch's supervisor (in a session of its own, so
    that a terminal's Ctrl-C reaches it once, from here), which stops its workers gracefully."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            process.send_signal(signum)


def summary_line(when: float, count: int, codes_seen: Counter[str], in_flight: int) -> str:
    """`12:00:01  34 txn/s  00:30 51:2 91:1  in flight 3`: one second of the demo's transactions."""
    rcs = " ".join(f"{rc}:{n}" for rc, n in sorted(codes_seen.items()))
    clock = time.strftime("%H:%M:%S", time.localtime(when))
    return f"{clock}  {count} txn/s  {rcs or '-'}  in flight {in_flight}"


async def summarise(log_file: Path, switch, interval: float = 1.0) -> None:
    """Each second something happened, one line on stdout: transactions (read back from the
    switch's log, which the console no longer shows), their response codes, and what is in flight."""
    with open(log_file, encoding="utf-8", errors="replace") as log:
        log.seek(0, os.SEEK_END)
        pending = ""
        while True:
            await trio.sleep(interval)
            pending += log.read()
            lines = pending.split("\n")
            pending = lines.pop()  # an incomplete last line waits for the next pass
            seen: Counter[str] = Counter()
            for line in lines:
                if '"event":"txn"' not in line:
                    continue
                try:
                    seen[str(json.loads(line).get("rc") or "--")] += 1
                except ValueError:
                    continue
            count = sum(seen.values())
            if count or switch.in_flight:
                print(summary_line(time.time(), count, seen, switch.in_flight), flush=True)


async def _run_step(step: Step, terminals: dict[str, Terminal], first: list[Message]) -> Message:
    terminal = terminals[step.terminal]
    if step.mti == "0800":
        return await terminal.echo()
    if step.mti == "0400":
        return await terminal.reverse(first[0])
    request = terminal.card_request(step.mti, pan=step.pan, amount=step.amount, expiry=EXPIRY,
                                    processing_code=step.processing_code, pin=step.pin, cvv2=step.cvv2,
                                    extra={"19": step.country} if step.country else None)
    if not first:
        first.append(request)
    return await terminal.send(request)


async def run_script(data_dir: Path, capture: sink.Capture | None = None, journal: str | None = None) -> int:
    rows = []
    pin_key = terminal_pin_key()
    taks = {terminal["terminal"]: terminal["tak"] for terminal in demo_terminals()}
    async with trio.open_nursery() as nursery:
        network: Network = await start_network(nursery, data_dir, capture=capture, journal=journal)
        for _, bank in network.issuers.values():
            bank.keep_ledger()  # for the recon at the end
        async with contextlib.AsyncExitStack() as stack:
            terminals = {name: await stack.enter_async_context(
                open_terminal("127.0.0.1", network.ports[listener], dialect=dialect, tid=tid, pin_key=pin_key,
                              mac_key=taks[tid]))
                for name, (listener, dialect, tid) in TERMINALS.items()}
            first: list[Message] = []
            for step in SCRIPT:
                started = trio.current_time()
                try:
                    got = (await _run_step(step, terminals, first)).get("39", "--")
                except TerminalError as exc:
                    got = f"error: {exc}"
                rows.append((step, got, (trio.current_time() - started) * 1000))
        recons = await reconcile_issuers(network)
        nursery.cancel_scope.cancel()
    print(f"{'#':>2}  {'transaction':<42} {'card':<18} {'expect':>6} {'got':>4} {'ms':>7}  result")
    for number, (step, got, ms) in enumerate(rows, 1):
        card = mask_pan(step.pan) if step.pan else "-"
        verdict = "ok" if got == step.expect else f"MISMATCH: {codes.described(got)}"
        print(f"{number:>2}  {step.label:<42} {card:<18} {step.expect:>6} {got:>4} {ms:>7.1f}  {verdict}")
    failed = sum(1 for step, got, _ in rows if got != step.expect)
    print(f"\n{len(rows) - failed} of {len(rows)} outcomes as expected", file=sys.stdout)
    for name, result in recons:
        print(recon_report(name, network.switch.business.date.isoformat(), result))
    return 1 if failed or not all(result.clean for _, result in recons) else 0


async def reconcile_issuers(network: Network) -> list[tuple[str, ReconResult]]:
    """Each issuer's ledger against the journal for today's business date, once store-and-forward
    has delivered what it holds (the demo's timeouts are reversed through it)."""
    switch = network.switch
    with trio.move_on_after(RECON_WAIT):
        while any(switch.saf.pending(name) for name in switch.links):
            await trio.sleep(0.05)
    await switch.journal.flush()
    today = switch.business.date.isoformat()
    results = []
    for name, (_, bank) in sorted(network.issuers.items()):
        ledger = list(bank.ledger or ())
        results.append((name, await switch.journal.commit(
            lambda connection: reconcile(connection, name, today, ledger))))
    return results
