"""The issuer host emulator: a Trio TCP server in front of an emulated `Bank`.

It speaks any dialect, answers requests concurrently (a slow card never delays another), and
applies the bank's fault rules: added latency, no reply, a closed connection, or the whole process
dying (`os._exit`) right after it booked its decision and before answering. With PIN keys in its
`[issuer]` section it verifies PIN blocks under its ZPK first (emulators.issuer_pins); with
`mac = true` it checks requests' MACs and MACs its answers under its ZAK, and can change that
key over the link (emulators.issuer_macs).

With an `[issuer.tls]` table (cert, key; ca and client_certs to ask the switch for its
certificate) it serves TLS only, so issuer-link TLS is tested end to end; a connection that
fails the handshake is closed with one `tls_handshake_failed` line.

With `ledger = "FILE"` in `[issuer]` every debit, credit and reversal the bank books is appended
to FILE as a JSON line (masked cards), the ledger `cardswitch recon` compares with the switch's
journal. With `books = "FILE"` in `[issuer]` the bank's books are read from FILE at start (when it exists)
and written back after every decision, before the answer leaves: an issuer killed with kill -9
and restarted keeps what it approved and reversed, as a real host's database does.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import attrs
import trio

from emulators.bank import AmountRule, Bank, Fault, parse_account, parse_fault
from emulators.issuer_macs import MAC_FAILED, IssuerMacs, parse_issuer_macs
from emulators.issuer_pins import PinCheck, parse_pin_check
from switch import logs
from switch.config import parse_tls
from switch.errors import UsageError
from switch.streams import Connection
from switch.tls import TlsConfig, TlsEndpoint
from switch.tomlfile import Table, read_toml
from switch.wire.dialect import Dialect, MessageDecodeError, load_dialect
from switch.wire.framing import Frame, FramingError
from switch.wire.message import Message, is_response

SEND_QUEUE = 4096  # answers waiting for the socket; a switch that reads nothing loses the connection
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to complete its TLS handshake


@attrs.frozen
class IssuerHostConfig:
    name: str
    host: str
    port: int
    dialect: Dialect
    pin_check: PinCheck | None = None  # verify PIN blocks under the ZPK shared with the switch
    macs: IssuerMacs | None = None  # MACs under the ZAK shared with the switch
    books: Path | None = None  # the bank's books kept here across restarts (None: memory only)
    tls: TlsConfig | None = None  # serve TLS only


def save_books(path: Path, bank: Bank) -> None:
    """Replace the books file atomically (a kill -9 leaves the old or the new one, whole)."""
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(bank.snapshot()))
    os.replace(scratch, path)


def load_issuer_file(path: str | Path) -> tuple[IssuerHostConfig, Bank]:
    """An issuer file: `[issuer]` (name, host, port, dialect, PIN keys), `[[cards]]`, `[[rules]]`."""
    top = Table(path, "", read_toml(path))
    section = top.table("issuer")
    config = IssuerHostConfig(
        name=section.get("name", str, expected="the issuer's name", check=bool),
        host=section.get("host", str, "127.0.0.1"),
        port=section.get("port", int, 0, "a port from 0 to 65535", lambda v: 0 <= v <= 65535),
        dialect=load_dialect(section.get("dialect", str, "iso87-binary")),
        pin_check=parse_pin_check(section, Path(path).parent),
        macs=parse_issuer_macs(section, Path(path).parent),
        tls=parse_tls(section, Path(path).parent, server_side=True),
    )
    ledger = section.get("ledger", str, None, "a file path for the bank's ledger (JSON lines, for cardswitch recon)")
    books = section.get("books", str, None, "a file path for the bank's books")
    if books is not None:
        config = attrs.evolve(config, books=Path(path).parent / books)
    section.finish()
    accounts = [parse_account(card) for card in top.tables("cards")]
    rules = []
    for rule in top.tables("rules"):
        rules.append(AmountRule(amount=rule.get("amount", int, expected="an amount in minor units"),
                                fault=parse_fault(rule)))
        rule.finish()
    top.finish()
    bank = Bank(accounts, rules)
    if ledger is not None:
        bank.keep_ledger(Path(path).parent / ledger)
    if config.books is not None and config.books.exists():
        bank.restore(json.loads(config.books.read_text()))
    return config, bank


async def serve_issuer(config: IssuerHostConfig, bank: Bank, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve the bank on the configured address; reports the bound port via task_status."""
    try:
        sockets = await trio.open_tcp_listeners(config.port, host=config.host)
    except OSError as exc:  # port in use, unknown host: the operator's to fix, in one line
        raise UsageError(f"issuer {config.name!r}: cannot listen on {config.host}:{config.port} "
                         f"({exc.strerror or exc})") from None
    port = sockets[0].socket.getsockname()[1]
    logs.event("issuer_up", issuer=config.name, port=port, dialect=config.dialect.name, tls=config.tls is not None)
    task_status.started(port)
    tls = TlsEndpoint(config.tls, server_side=True) if config.tls is not None else None
    await trio.serve_listeners(partial(_accepted, config, bank, tls), sockets)


async def _accepted(config: IssuerHostConfig, bank: Bank, tls: TlsEndpoint | None, stream: trio.SocketStream) -> None:
    if tls is None:
        return await _connection(config, bank, stream)
    secured = await tls.accept(stream, HANDSHAKE_TIMEOUT, issuer=config.name)
    if secured is not None:
        await _connection(config, bank, secured)


async def _connection(config: IssuerHostConfig, bank: Bank,
                      stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]) -> None:
    dialect = config.dialect
    connection = Connection.adopt(stream, SEND_QUEUE)

    def decide(request: Message) -> Message:
        response = bank.decide(request)
        if config.books is not None:
            save_books(config.books, bank)
        return response

    def answer(request: Message, refusal: str | None) -> Message:
        return decide(request) if refusal is None else bank._reply(request, refusal)

    def reply(request: Message, frame: Frame, refusal: str | None = None) -> None:
        connection.send_nowait(dialect.frame(answer(request, refusal), dialect.framing.reply_header(frame.header)))

    async def reply_with_mac(macs: IssuerMacs, request: Message, frame: Frame, refusal: str | None) -> None:
        payload = await macs.seal(answer(request, refusal), dialect)
        connection.send_nowait(dialect.framing.frame(payload, dialect.framing.reply_header(frame.header)))

    async def refusal(request: Message, frame: Frame) -> str | None:
        """63 for a request whose MAC fails, else the PIN check's verdict."""
        if config.macs is not None and request.mti != "0800" and \
                not await config.macs.verifies(request, frame.payload, dialect):
            return MAC_FAILED
        return await config.pin_check.verdict(request, bank.accounts) if config.pin_check else None

    async def answer_later(request: Message, frame: Frame, fault: Fault, scope: trio.CancelScope) -> None:
        if fault.latency:
            await trio.sleep(fault.latency)
        if fault.action == "close":
            scope.cancel()
            return
        if fault.action == "no_reply":
            return
        if fault.action == "crash_after_decide":
            decide(request)  # booked (and saved, with `books`) ...
            logs.warning("issuer_emulator_crashing", issuer=config.name, stan=request.get("11"))
            logs.flush()
            os._exit(70)  # ... and the host dies before its answer leaves
        refused = await refusal(request, frame)
        if config.macs is None:
            reply(request, frame, refused)
        elif refused != MAC_FAILED or not config.macs.drop:
            await reply_with_mac(config.macs, request, frame, refused)

    def send(message: Message) -> None:  # the issuer's own requests (a key change)
        connection.send_nowait(dialect.frame(message, dialect.framing.header.default))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run_writer)
            if config.macs is not None:
                config.macs.connections.add(send)
            framer = dialect.framer()
            while data := await connection.receive():
                for frame in framer.feed(data):
                    try:
                        request = dialect.decode(frame.payload)
                    except MessageDecodeError as exc:
                        logs.warning("issuer_emulator_undecodable", issuer=config.name, reason=str(exc))
                        continue
                    if is_response(request.mti):  # the switch's 0810 to a key change
                        if config.macs is not None:
                            config.macs.answered(request)
                        continue
                    fault: Fault = bank.fault_for(request)
                    if fault.latency or fault.action != "none" or config.macs or (config.pin_check and "52" in request):
                        nursery.start_soon(answer_later, request, frame, fault, nursery.cancel_scope)
                    else:  # the common case answers at once: no task, no wait
                        reply(request, frame)
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock, OSError, FramingError):
        pass
    finally:
        if config.macs is not None:
            config.macs.connections.discard(send)
        connection.close()
