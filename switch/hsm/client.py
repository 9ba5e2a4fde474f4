"""What the switch uses to reach the HSM: the same typed async methods in-process or over TCP.

Both implementations build payShield-style host commands and read the responses, so behaviour
is identical whether the HSM is this package in the same process (`InProcessHsm`, the default)
or a server at a host and port (`TcpHsm`, ours or a real payShield speaking the same layouts).
Keys are passed as the LMK-encrypted strings the key store holds. Failures:

- `HsmUnavailable`: the HSM could not be reached (a failed TLS handshake included) or did not
  answer within the timeout.
- `HsmError(code)`: the HSM answered with an error code (15 bad input, 10/11 key parity, ...).
A verification that fails (error 01) is not an exception: the verify methods return False.
"""

from __future__ import annotations

import math

import attrs
import trio

from switch.hsm.codec import DEFAULT_HEADER_LENGTH, parse_response, response_code
from switch.hsm.commands import FORMAT_PIN_CODES, Dispatcher
from switch.hsm.framing import FrameDecoder, frame
from switch.hsm.lmk import Lmk, with_scheme
from switch.hsm.pinverify import DEFAULT_DECTAB
from switch.tls import HandshakeFailed, TlsConfig, TlsEndpoint


class HsmUnavailable(Exception):
    """The HSM is unreachable, closed the connection or did not answer in time."""


class HsmError(Exception):
    """The HSM answered a command with an error code."""

    def __init__(self, code: str, command: str = ""):
        super().__init__(f"HSM error {code}" + (f" on {command}" if command else ""))
        self.code = code
        self.command = command


@attrs.frozen
class GeneratedKey:
    under_lmk: str
    kcv: str
    under_zmk: str | None = None


def _account(pan: str, *formats: int) -> str:
    """The PAN as the commands carry it: 12-digit account field, or length + PAN for format 4."""
    if 4 in formats:
        return f"{len(pan):02d}{pan}"
    return pan[-13:-1] if len(pan) >= 13 else pan


def _pin_format(fmt: int) -> str:
    try:
        return FORMAT_PIN_CODES[fmt]
    except KeyError:
        raise HsmError("23") from None


def _key_kind(kind: str) -> str:
    if kind not in ("tpk", "zpk"):
        raise ValueError("key_kind must be 'tpk' or 'zpk'")
    return kind


class _HostCommandClient:
    """Builds commands and reads their answers; subclasses only carry a command to the HSM."""

    async def _command(self, command: str, data: str) -> tuple[str, str]:
        """One command's error code and response data, still to be judged by the caller."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the connection, if any."""

    async def _data(self, command: str, data: str = "") -> str:
        error_code, response = await self._command(command, data)
        if error_code != "00":
            raise HsmError(error_code, command)
        return response

    async def _verify(self, command: str, data: str) -> bool:
        error_code, _ = await self._command(command, data)
        if error_code not in ("00", "01"):
            raise HsmError(error_code, command)
        return error_code == "00"

    async def diagnostics(self) -> str:
        """NC: the LMK check value (16 hex) the HSM runs with."""
        return (await self._data("NC"))[:16]

    async def key_check_value(self, key_type_code: str, key: str) -> str:
        """BU: check value of an LMK-encrypted key of the given 3-character type code."""
        return await self._data("BU", f"FF0{with_scheme(key)};{key_type_code}")

    async def generate_key(self, key_type_code: str, scheme: str = "U", zmk: str | None = None) -> GeneratedKey:
        """A0: a new random key under the LMK (and under `zmk` for export, when given)."""
        data = await self._data("A0", ("1" if zmk else "0") + key_type_code + scheme + (with_scheme(zmk) if zmk else ""))
        under_lmk_len = {"U": 33, "T": 49, "R1": 34, "R2": 50, "R3": 66}.get(scheme, 0)
        under_lmk, rest = data[:under_lmk_len], data[under_lmk_len:]
        return GeneratedKey(under_lmk, rest[-6:], rest[:-6] if zmk else None)

    async def import_zpk(self, zmk: str, zpk_under_zmk: str) -> GeneratedKey:
        """FA: a ZPK received under a ZMK, re-encrypted under the LMK."""
        return await self._import("FA", zmk, zpk_under_zmk)

    async def import_zak(self, zmk: str, zak_under_zmk: str) -> GeneratedKey:
        """MI: a ZAK received under a ZMK, re-encrypted under the LMK."""
        return await self._import("MI", zmk, zak_under_zmk)

    async def _import(self, command: str, zmk: str, key_under_zmk: str) -> GeneratedKey:
        data = await self._data(command, with_scheme(zmk) + key_under_zmk)
        return GeneratedKey(data[:-6], data[-6:])

    async def _translate(self, command: str, src: str, dst: str, pin_block: str, pan: str,
                         src_format: int, dst_format: int, max_pin_length: int) -> str:
        data = await self._data(command, with_scheme(src) + with_scheme(dst) + f"{max_pin_length:02d}"
                                + pin_block.upper() + _pin_format(src_format) + _pin_format(dst_format)
                                + _account(pan, src_format, dst_format))
        return data[2:-2]

    async def translate_pin_tpk_to_zpk(self, tpk: str, zpk: str, pin_block: str, pan: str,
                                       src_format: int = 0, dst_format: int = 0,
                                       max_pin_length: int = 12) -> str:
        """CA: a terminal's PIN block re-encrypted under a zone PIN key; returns the hex block."""
        return await self._translate("CA", tpk, zpk, pin_block, pan, src_format, dst_format, max_pin_length)

    async def translate_pin_zpk_to_zpk(self, src_zpk: str, dst_zpk: str, pin_block: str, pan: str,
                                       src_format: int = 0, dst_format: int = 0,
                                       max_pin_length: int = 12) -> str:
        """CC: a PIN block moved from one zone PIN key to another; returns the hex block."""
        return await self._translate("CC", src_zpk, dst_zpk, pin_block, pan, src_format, dst_format, max_pin_length)

    async def verify_pin_ibm(self, key_kind: str, pin_key: str, pvk: str, pin_block: str, pan: str,
                             fmt: int, offset: str, validation_data: str,
                             dectab: str = DEFAULT_DECTAB, pin_len: int = 4,
                             max_pin_length: int = 12) -> bool:
        """DA (key_kind 'tpk') / EA ('zpk'): IBM 3624 offset check. `validation_data` is
        payShield's 12 characters, 'N' standing for the last 5 digits of the account field."""
        command = "DA" if _key_kind(key_kind) == "tpk" else "EA"
        return await self._verify(command, with_scheme(pin_key) + with_scheme(pvk) + f"{max_pin_length:02d}"
                                  + pin_block.upper() + _pin_format(fmt) + f"{pin_len:02d}" + _account(pan, fmt)
                                  + dectab + validation_data + offset.ljust(12, "F"))

    async def verify_pin_pvv(self, key_kind: str, pin_key: str, pvk: str, pin_block: str, pan: str,
                             fmt: int, pvki: int, pvv: str) -> bool:
        """DC (key_kind 'tpk') / EC ('zpk'): Visa PVV check."""
        command = "DC" if _key_kind(key_kind) == "tpk" else "EC"
        return await self._verify(command, with_scheme(pin_key) + with_scheme(pvk) + pin_block.upper()
                                  + _pin_format(fmt) + _account(pan, fmt) + f"{pvki}" + pvv)

    async def generate_cvv(self, cvk: str, pan: str, expiry_yymm: str, service_code: str) -> str:
        """CW: CVV (service code from track 2), CVV2 ('000') or iCVV ('999')."""
        return await self._data("CW", f"{with_scheme(cvk)}{pan};{expiry_yymm}{service_code}")

    async def verify_cvv(self, cvk: str, pan: str, expiry_yymm: str, service_code: str, cvv: str) -> bool:
        """CY: checks a CVV / CVV2 / iCVV."""
        return await self._verify("CY", f"{with_scheme(cvk)}{cvv}{pan};{expiry_yymm}{service_code}")

    def _mac_fields(self, key: str, key_type_code: str, data: bytes, algorithm: str, padding: int, size: int) -> str:
        algorithm_code = {"x9.19": "3", "cmac": "6"}.get(algorithm, "?")
        size_code = {4: "0", 8: "1"}.get(size, "?")
        message = data.hex().upper()
        return (f"01{size_code}{algorithm_code}{padding}{key_type_code}{with_scheme(key)}"
                f"{len(message):04X}{message}")

    async def generate_mac(self, key: str, data: bytes, algorithm: str = "x9.19", padding: int = 1,
                           size: int = 8, key_type_code: str = "008") -> str:
        """M6: MAC (hex, `size` bytes) of `data` under a ZAK ('008') or TAK ('003')."""
        return await self._data("M6", self._mac_fields(key, key_type_code, data, algorithm, padding, size))

    async def verify_mac(self, key: str, data: bytes, mac: str, algorithm: str = "x9.19", padding: int = 1,
                         key_type_code: str = "008") -> bool:
        """M8: checks a 4- or 8-byte MAC given in hex."""
        size = len(mac) // 2
        return await self._verify("M8", self._mac_fields(key, key_type_code, data, algorithm, padding, size) + mac.upper())


class InProcessHsm(_HostCommandClient):
    """The HSM in this process: commands go to the dispatcher's handlers as text, with no frame
    built around them only to be parsed again (no header, length or response code to check)."""

    def __init__(self, lmk: Lmk):
        self._dispatcher = Dispatcher(lmk)

    def __repr__(self) -> str:
        return f"InProcessHsm({self._dispatcher.lmk!r})"

    async def _command(self, command: str, data: str) -> tuple[str, str]:
        # A cancellation point, not a schedule point: a command is some microseconds of CPU, less
        # than one trip through trio's scheduler (an epoll call) costs, and the switch's callers
        # reach a schedule point at their next socket read or write anyway.
        await trio.lowlevel.checkpoint_if_cancelled()
        if not data.isascii():
            raise HsmError("15", command)  # what the HSM over TCP answers to a frame that is not ASCII
        return self._dispatcher.run(command, data)


class _ConnectionLost(Exception):
    pass


class TcpHsm(_HostCommandClient):
    """Host commands over one persistent TCP connection, opened on first use and reopened
    after any failure; over TLS with `tls` (the handshake is part of opening it). Calls are
    serialised on the connection; each is bounded by `timeout` seconds (including the wait for
    the connection), after which `HsmUnavailable` is raised."""

    def __init__(self, host: str, port: int, timeout: float = 2.0,
                 header_length: int = DEFAULT_HEADER_LENGTH, tls: TlsConfig | None = None):
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("timeout must be a positive number of seconds")
        self.host, self.port, self.timeout = host, port, timeout
        self.header_length = header_length
        self._sequence = 0
        self.tls = TlsEndpoint(tls, server_side=False) if tls is not None else None
        self._stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] | None = None
        self._decoder = FrameDecoder()
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"TcpHsm({self.host!r}, {self.port}, timeout={self.timeout})"

    async def aclose(self) -> None:
        self._discard()
        await trio.lowlevel.checkpoint()

    def _discard(self) -> None:
        """Drop the connection synchronously (safe inside a cancelled scope)."""
        stream, self._stream = self._stream, None
        self._decoder = FrameDecoder()
        if isinstance(stream, trio.SSLStream):
            stream.transport_stream.socket.close()
        elif stream is not None:
            stream.socket.close()

    async def _command(self, command: str, data: str) -> tuple[str, str]:
        """The command framed with a header of its own, sent, and its response read back."""
        self._sequence = (self._sequence + 1) % 10**self.header_length
        header = str(self._sequence).zfill(self.header_length).encode("ascii")
        try:
            request = header + (command + data).encode("ascii")
        except UnicodeEncodeError:
            raise HsmError("15", command) from None  # what the HSM would answer; never sent
        reply = await self._exchange(request)
        try:
            response = parse_response(reply, self.header_length)
        except ValueError:
            raise HsmUnavailable(f"unreadable response to {command}") from None
        if response.header != header:
            raise HsmUnavailable(f"response header does not match the {command} request")
        if response.code != response_code(command):
            raise HsmError(response.error_code, command)
        return response.error_code, response.data

    async def _exchange(self, request: bytes) -> bytes:
        try:
            with trio.fail_after(self.timeout):
                async with self._lock:
                    try:
                        return await self._round_trip_with_retry(request)
                    except BaseException:
                        self._discard()
                        raise
        except trio.TooSlowError:
            raise HsmUnavailable(f"no answer from HSM at {self.host}:{self.port} within {self.timeout}s") from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, _ConnectionLost) as exc:
            raise HsmUnavailable(f"HSM at {self.host}:{self.port} unreachable ({type(exc).__name__})") from None
        except HandshakeFailed as exc:
            raise HsmUnavailable(f"HSM at {self.host}:{self.port}: TLS handshake failed ({exc.reason})") from None

    async def _round_trip_with_retry(self, request: bytes) -> bytes:
        reused = self._stream is not None
        try:
            return await self._round_trip(request)
        except (trio.BrokenResourceError, _ConnectionLost):
            if not reused:
                raise
        # The kept-open connection had gone stale (HSM restarted, idle close): commands are
        # pure computations, so sending again on a fresh connection is safe.
        self._discard()
        return await self._round_trip(request)

    async def _round_trip(self, request: bytes) -> bytes:
        if self._stream is None:
            stream = await trio.open_tcp_stream(self.host, self.port)
            self._stream = stream if self.tls is None else await self.tls.secure(stream, self.timeout, self.host)
        await self._stream.send_all(frame(request))
        while True:
            data = await self._stream.receive_some(65536)
            if not data:
                raise _ConnectionLost()
            frames = self._decoder.feed(data)
            if frames:
                return frames[0]
