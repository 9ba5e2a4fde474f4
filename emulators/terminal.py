"""The terminal emulator: an acquirer terminal over one TCP (or TLS) connection, as a Python API.

`Terminal` builds requests the way a POS terminal does (STAN, transmission time, RRN, TID/MID),
sends any number concurrently and matches each answer by field 11 + field 41. Tests, the demo,
`cardswitch terminal` and the load generator all drive the switch through it.

A terminal given its MAC key (`mac_key`: the clear TAK, test keys only) MACs every request it
sends (field 64, or 128 with a secondary bitmap: ANSI X9.19 over the message as sent) and checks
the MAC of every answer; an answer whose MAC is missing or wrong is no answer (`ResponseMacError`).
"""

from __future__ import annotations

import datetime
from contextlib import asynccontextmanager
from typing import AsyncIterator

import attrs
import trio

from switch.capture.sink import Capture
from switch.core.matcher import Matcher, next_stan
from switch.core.messages import ADVICE_MTIS, card_pan
from switch.errors import NoAnswer
from switch.hsm import encrypt_pin_block, mac
from switch.hsm.keys import Key
from switch.hsm.keystore import Keystore
from switch.streams import Connection
from switch.tls import HandshakeFailed, TlsEndpoint
from switch.wire.masking import CVV2_TAG
from switch.wire.dialect import Dialect, MessageDecodeError, load_dialect
from switch.wire.framing import FramingError
from switch.wire.macs import covered, mac_failure, received_mac, with_mac, with_zero_mac
from switch.wire.message import Message

DEFAULT_TID = "T0000001"
DEFAULT_MID = "M00000000000001"


class TerminalError(NoAnswer):
    """The switch did not answer in time, or the connection failed (the CLI exits 3)."""


class ResponseMacError(TerminalError):
    """The answer's MAC is missing or does not verify under the terminal's TAK: no usable answer."""


@attrs.frozen
class PinKey:
    """The terminal's PIN key: its TPK's name in a key store. The PIN block is made inside the
    HSM package (`encrypt_pin_block`), so the terminal never holds a clear key."""

    keystore: Keystore
    tpk: str


def transmission_time(now: datetime.datetime) -> str:
    return now.strftime("%m%d%H%M%S")


def original_data_elements(request: Message, acquirer_id: str = "0") -> str:
    """Field 90 for a reversal of `request`: MTI, STAN, field 7, acquirer id, forwarder id."""
    return request.mti + request["11"] + request["7"] + acquirer_id.zfill(11) + "0" * 11


class _Pending:
    """A request waiting for its answer (None when the connection ended first)."""

    __slots__ = ("done", "response", "mac_failure")

    def __init__(self):
        self.done = trio.Event()
        self.response: Message | None = None
        self.mac_failure: str | None = None  # why the answer's MAC failed (a terminal with a MAC key)


class Terminal:
    def __init__(self, connection: Connection | None, dialect: Dialect, tid: str, mid: str,
                 timeout: float, header: bytes, capture: Capture | None = None, pin_key: PinKey | None = None,
                 first_stan: int = 1, mac_key: str | None = None):
        self.connection = connection  # None: builds requests only (the codec benchmark)
        self.dialect = dialect
        self.tid = tid
        self.mid = mid
        self.timeout = timeout
        self.header = header
        self.pin_key = pin_key
        self._mac_key = Key.tdes(bytes.fromhex(mac_key)) if mac_key is not None else None
        self._last_stan = first_stan - 1
        # Answers are matched by field 11 + field 41; a terminal that retransmits sends the same
        # key more than once, and each send times itself.
        self._waiting: Matcher[_Pending] = Matcher(("11", "41"), timeout=None, assign_stan=False, repeats=True)
        self.unmatched: list[Message] = []
        self.capture = capture  # test environments only: records what this terminal sends and gets
        self.capture_id = capture.connection_id("terminal") if capture else ""

    # -- building requests ------------------------------------------------------------

    def next_stan(self) -> str:
        self._last_stan = next_stan(self._last_stan)
        return f"{self._last_stan:06d}"

    def base(self, mti: str, processing_code: str, amount: int, currency: str) -> Message:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%m%d%H%M%S%y%j")  # one clock read
        stan = self.next_stan()
        return Message(mti, {
            "3": processing_code,
            "4": f"{amount:012d}",
            "7": stamp[:10],  # MMDDhhmmss
            "11": stan,
            "12": stamp[4:10],  # hhmmss
            "13": stamp[:4],  # MMDD
            "37": stamp[11] + stamp[12:15] + stamp[4:6] + stan,  # last digit of the year, day, hour, STAN
            "41": self.tid,
            "42": self.mid,
            "49": currency,
        })

    def card_request(self, mti: str, *, pan: str | None = None, amount: int, expiry: str | None = None,
                     track2: str | None = None, currency: str = "978", processing_code: str = "000000",
                     pin_block: str | None = None, pin: str | None = None, cvv2: str | None = None,
                     extra: dict[str, str] | None = None) -> Message:
        """A card request; `pin` is entered on the PIN pad (encrypted under the terminal's TPK
        into field 52), `cvv2` goes into field 48 tag 92. An advice (0120, 0220) reports an
        approval the terminal already gave (offline): field 39 is 00."""
        message = self.base(mti, processing_code, amount, currency)
        if mti in ADVICE_MTIS:
            message["39"] = "00"
        if pan is not None:
            message["2"] = pan
        if expiry is not None:
            message["14"] = expiry
        if track2 is not None:
            message["35"] = track2
        message["22"] = "901" if track2 else "012"
        if pin is not None:
            if self.pin_key is None:
                raise TerminalError("a PIN needs the terminal's PIN key (open_terminal(pin_key=...))")
            pin_block = encrypt_pin_block(self.pin_key.keystore, self.pin_key.tpk, pin, card_pan(message) or "")
        if pin_block is not None:
            message["52"] = pin_block
        if cvv2 is not None:
            message["48"] = f"{CVV2_TAG}{len(cvv2):02d}{cvv2}"
        message.fields.update(extra or {})
        return message

    def reversal_of(self, original: Message, mti: str = "0400") -> Message:
        """An 0400 (or reversal advice, 0420) for `original`, carrying field 90 and the
        original's card and amount."""
        message = self.base(mti, original["3"], int(original["4"]), original["49"])
        for field in ("2", "14", "37"):
            if field in original:
                message[field] = original[field]
        message["90"] = original_data_elements(original)
        return message

    def network(self, code: str = "301") -> Message:
        now = datetime.datetime.now(datetime.timezone.utc)
        return Message("0800", {"7": transmission_time(now), "11": self.next_stan(), "41": self.tid, "70": code})

    def reconciliation(self, business_date: str, totals: dict[str, str], mti: str = "0500") -> Message:
        """An 0500 (or 0520 advice) with this terminal's batch totals for `business_date` (MMDD,
        field 15): fields 74-77, 86-89 and 97 (switch.core.reconciliation.Totals.fields)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        return Message(mti, {"7": transmission_time(now), "11": self.next_stan(), "41": self.tid,
                             "15": business_date, **totals})

    # -- transactions -----------------------------------------------------------------

    async def purchase(self, **card) -> Message:
        return await self.send(self.card_request("0200", **card))

    async def authorize(self, **card) -> Message:
        return await self.send(self.card_request("0100", **card))

    async def reverse(self, original: Message) -> Message:
        return await self.send(self.reversal_of(original))

    async def echo(self) -> Message:
        return await self.send(self.network("301"))

    async def send(self, message: Message, timeout: float | None = None) -> Message:
        """Send one request and wait for the response with the same field 11 and 41."""
        pending = _Pending()
        key = self._waiting.park(message, pending)
        try:
            data = self.dialect.framing.frame(self.encode(message), self.header)
            self._record("in", data)
            await self.send_raw(data)
            with trio.move_on_after(self.timeout if timeout is None else timeout):
                await pending.done.wait()
            if not pending.done.is_set():
                raise TerminalError(f"no response to {message.mti} STAN {message.get('11')} within {self.timeout} s")
            if pending.response is None:
                raise TerminalError("connection closed before the response arrived")
            if pending.mac_failure is not None:
                raise ResponseMacError(f"response to {message.mti} STAN {message.get('11')}: {pending.mac_failure}")
            return pending.response
        finally:
            if not pending.done.is_set():
                self._waiting.forget(key, pending)

    def encode(self, message: Message) -> bytes:
        """`message` as the terminal sends it: with its MAC when the terminal has a MAC key."""
        if self._mac_key is None:
            return self.dialect.encode(message)
        placeholder, field = with_zero_mac(message)
        payload = self.dialect.encode(placeholder)
        mac_value = mac.generate(self._mac_key, covered(payload, self.dialect, field))
        return with_mac(payload, self.dialect, field, mac_value.hex().upper())

    def _mac_failure(self, response: Message, payload: bytes) -> str | None:
        """Why the answer's MAC fails under the terminal's MAC key; None when it verifies (or the
        terminal has no MAC key)."""
        if self._mac_key is None:
            return None
        found = received_mac(response, payload, self.dialect)
        if isinstance(found, str):
            return found
        return mac_failure(found.field, mac.verify(self._mac_key, found.data, bytes.fromhex(found.mac)))

    def _connected(self) -> Connection:
        """The connection, for sending and reading: a terminal made without one only builds requests."""
        if self.connection is None:
            raise TerminalError("this terminal builds requests only: it has no connection")
        return self.connection

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use this to send malformed frames)."""
        connection = self._connected()
        try:
            connection.send_nowait(data)
        except (trio.ClosedResourceError, trio.WouldBlock) as exc:
            raise TerminalError(f"connection lost: {type(exc).__name__}") from None
        await trio.lowlevel.checkpoint()

    async def _writer(self) -> None:
        connection = self._connected()
        try:
            await connection.run_writer()
        except OSError:
            connection.finish_writing()  # the reader sees the end and fails what waits

    async def _reader(self) -> None:
        connection = self._connected()
        framer = self.dialect.framer(65535)
        try:
            while data := await connection.receive():
                for frame in framer.feed(data):
                    self._record("out", self.dialect.framing.frame(frame.payload, frame.header))
                    response = self.dialect.decode(frame.payload)
                    self._dispatch(response, self._mac_failure(response, frame.payload))
        except (trio.ClosedResourceError, OSError, FramingError, MessageDecodeError):
            pass  # the connection is unusable; every waiting request fails below
        connection.finish_writing()
        for pending in self._waiting.drain():
            pending.done.set()

    def _record(self, direction: str, data: bytes) -> None:
        """Capture directions are seen from the server: "in" is what the terminal sends."""
        if self.capture is not None:
            self.capture.record(self.capture_id, direction, self.dialect, data)

    def _dispatch(self, response: Message, failure: str | None = None) -> None:
        _, pending = self._waiting.match(response)
        if pending is None:
            self.unmatched.append(response)
            return
        pending.response = response
        pending.mac_failure = failure
        pending.done.set()


@asynccontextmanager
async def open_terminal(host: str, port: int, *, dialect: str | Dialect = "iso87-binary",
                        tid: str = DEFAULT_TID, mid: str = DEFAULT_MID, timeout: float = 30.0,
                        header: bytes | None = None, capture: Capture | None = None,
                        pin_key: PinKey | None = None, first_stan: int = 1,
                        mac_key: str | None = None, tls: TlsEndpoint | None = None) -> AsyncIterator[Terminal]:
    """A connected terminal (over TLS with `tls`: the handshake within `timeout`); the
    connection closes when the block ends.

    A real terminal keeps counting its STAN across sessions; one-shot users (the CLI) pass a
    `first_stan` of their own so two quick runs are not taken for a retransmission. `header`: the
    network header of its requests (a TPDU...), the dialect's default when None. `mac_key`
    (the clear TAK in hex, 32 digits) makes it MAC its requests and check its answers' MACs."""
    if isinstance(dialect, str):
        dialect = load_dialect(dialect)
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise TerminalError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    try:
        secured = stream if tls is None else await tls.secure(stream, timeout, host)
    except HandshakeFailed as exc:
        raise TerminalError(f"TLS handshake with {host}:{port} failed: {exc.reason}") from None
    connection = Connection.adopt(secured, max_queued=1_000_000)
    try:
        async with trio.open_nursery() as nursery:
            terminal = Terminal(connection, dialect, tid, mid, timeout,
                                header if header is not None else dialect.framing.header.default, capture, pin_key, first_stan, mac_key)
            nursery.start_soon(terminal._writer)
            nursery.start_soon(terminal._reader)
            try:
                yield terminal
                with trio.move_on_after(1):  # what was sent last still goes out before the close
                    await connection.wait_drained()
            finally:
                nursery.cancel_scope.cancel()
    finally:
        connection.close()
