"""The host-command dispatcher: one payShield-style command frame in, one response frame out.

Sans-IO and total: whatever bytes arrive, `Dispatcher.handle` returns a response frame (with
the header echoed) and never raises. Field layouts follow payShield's variant-LMK commands and
are documented in docs/hsm.md. Keys arrive encrypted under the LMK; the clear keys and PINs
exist only inside a handler call.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from switch import logs
from switch.hsm import cvv, keywrap, mac, pinblock, pinverify
from switch.hsm.codec import DEFAULT_HEADER_LENGTH, CommandError, build_response, parse_request
from switch.hsm.keys import Algorithm, Key, with_odd_parity
from switch.hsm.lmk import KeyParityError, KeyType, Lmk, encrypted_key_length

FIRMWARE = "CSWHSM-01"
# payShield PIN block format codes <-> ISO 9564 formats.
PIN_FORMAT_CODES = {"01": 0, "05": 1, "47": 3, "48": 4}
FORMAT_PIN_CODES = {fmt: code for code, fmt in PIN_FORMAT_CODES.items()}
_MAC_ALGORITHMS = {"3": "x9.19", "6": "cmac"}
_MAC_SIZES = {"0": 4, "1": 8}
_MAC_KEY_TYPES = {"003": KeyType.TAK, "008": KeyType.ZAK}
_HEX_DIGITS = re.compile("[0-9A-Fa-f]*")


class Reader:
    """Consumes a command's data field by field; any shortfall is error 15 naming the field."""

    def __init__(self, data: str):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> str:
        if self.pos + n > len(self.data):
            raise CommandError("15", f"{what} missing or short")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def digits(self, n: int, what: str) -> str:
        value = self.take(n, what)
        if not value.isdigit():
            raise CommandError("15", f"{what} must be {n} digits")
        return value

    def hex(self, n: int, what: str) -> bytes:
        value = self.take(n, what)
        if not _HEX_DIGITS.fullmatch(value):  # bytes.fromhex alone would take spaces too
            raise CommandError("15", f"{what} must be {n} hex digits")
        return bytes.fromhex(value)

    def until(self, delimiter: str, what: str) -> str:
        end = self.data.find(delimiter, self.pos)
        if end < 0:
            raise CommandError("15", f"{what} not terminated by {delimiter!r}")
        value = self.data[self.pos : end]
        self.pos = end + 1
        return value

    def key(self, lmk: Lmk, key_type: KeyType, parity_code: str, what: str) -> Key:
        try:
            text = self.take(encrypted_key_length(self.data[self.pos : self.pos + 2]), what)
            return lmk.decrypt_key(key_type, text)
        except KeyParityError:
            raise CommandError(parity_code, f"{what} parity") from None
        except ValueError as exc:
            raise CommandError("15", f"{what}: {exc}") from None

    def pin_format(self, what: str) -> int:
        code = self.take(2, what)
        if code not in PIN_FORMAT_CODES:
            raise CommandError("23", f"{what} not one of {', '.join(PIN_FORMAT_CODES)}")
        return PIN_FORMAT_CODES[code]

    def account(self, *formats: int) -> str:
        """12-digit account field; when format 4 is involved, 2-digit length + full PAN."""
        if 4 not in formats:
            return self.digits(12, "account number")
        return self.digits(int(self.digits(2, "PAN length")), "PAN")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise CommandError("15", "unexpected data after the last field")


def _pin_block(r: Reader, key: Key) -> bytes:
    return r.hex(32 if key.algorithm is Algorithm.AES else 16, "PIN block")


def _check_max_length(pin_len: int, max_len: str) -> None:
    if pin_len > int(max_len):
        raise CommandError("24", "PIN longer than the maximum PIN length")


def nc(lmk: Lmk, r: Reader) -> str:
    r.end()
    return lmk.check_value() + FIRMWARE


def bu(lmk: Lmk, r: Reader) -> str:
    if r.take(2, "key type code") != "FF":
        raise CommandError("15", "key type code must be FF (key type follows ';')")
    r.digits(1, "key length flag")
    key_text = r.until(";", "key")
    key_type = _key_type(r.take(3, "key type"))
    r.end()
    key_reader = Reader(key_text)
    key = key_reader.key(lmk, key_type, "10", "key")
    key_reader.end()
    return key.kcv()


def _key_type(code: str) -> KeyType:
    try:
        return KeyType.from_code(code)
    except ValueError:
        raise CommandError("15", "unknown key type") from None


def a0(lmk: Lmk, r: Reader) -> str:
    mode = r.take(1, "mode")
    if mode not in "01":
        raise CommandError("15", "mode must be 0 or 1")
    key_type = _key_type(r.take(3, "key type"))
    scheme = r.take(1, "key scheme")
    if scheme == "R":
        scheme += r.take(1, "AES key size")
    lengths = {"U": 16, "T": 24, "R1": 16, "R2": 24, "R3": 32}
    if scheme not in lengths:
        raise CommandError("15", "key scheme must be U, T, R1, R2 or R3")
    material = secrets.token_bytes(lengths[scheme])
    key = Key.aes(material) if scheme[0] == "R" else Key.tdes(with_odd_parity(material))
    exported = ""
    if mode == "1":
        exported = keywrap.wrap(r.key(lmk, KeyType.ZMK, "10", "ZMK"), key)
    r.end()
    return lmk.encrypt_key(key_type, key) + exported + key.kcv()


def _import_under_zmk(lmk: Lmk, r: Reader, key_type: KeyType) -> str:
    """A working key received under a ZMK, re-encrypted under the LMK (FA: ZPK, MI: ZAK)."""
    zmk = r.key(lmk, KeyType.ZMK, "10", "ZMK")
    try:
        key = keywrap.unwrap(zmk, r.take(keywrap.wrapped_length(r.data[r.pos :]), key_type.name))
    except ValueError as exc:
        raise CommandError("15", f"{key_type.name}: {exc}") from None
    r.end()
    if not key.has_odd_parity():
        raise CommandError("11", f"{key_type.name} parity")
    return lmk.encrypt_key(key_type, key) + key.kcv()


def fa(lmk: Lmk, r: Reader) -> str:
    return _import_under_zmk(lmk, r, KeyType.ZPK)


def mi(lmk: Lmk, r: Reader) -> str:
    return _import_under_zmk(lmk, r, KeyType.ZAK)


def _translate(lmk: Lmk, r: Reader, source_type: KeyType) -> str:
    src_key = r.key(lmk, source_type, "10", f"source {source_type.name}")
    dst_key = r.key(lmk, KeyType.ZPK, "11", "destination ZPK")
    max_len = r.digits(2, "maximum PIN length")
    block = _pin_block(r, src_key)
    src_fmt = r.pin_format("source PIN block format")
    dst_fmt = r.pin_format("destination PIN block format")
    pan = r.account(src_fmt, dst_fmt)
    r.end()
    pin_len, out = pinblock.translate(src_key, src_fmt, dst_key, dst_fmt, block, pan)
    _check_max_length(pin_len, max_len)
    return f"{pin_len:02d}{out.hex().upper()}{FORMAT_PIN_CODES[dst_fmt]}"


def ca(lmk: Lmk, r: Reader) -> str:
    return _translate(lmk, r, KeyType.TPK)


def cc(lmk: Lmk, r: Reader) -> str:
    return _translate(lmk, r, KeyType.ZPK)


def _card(r: Reader) -> tuple[str, str, str]:
    pan = r.until(";", "PAN")
    return pan, r.digits(4, "expiry date"), r.digits(3, "service code")


def cw(lmk: Lmk, r: Reader) -> str:
    cvk = r.key(lmk, KeyType.CVK, "10", "CVK")
    pan, expiry, service_code = _card(r)
    r.end()
    return cvv.cvv(cvk, pan, expiry, service_code)


def cy(lmk: Lmk, r: Reader) -> str:
    cvk = r.key(lmk, KeyType.CVK, "10", "CVK")
    value = r.digits(3, "CVV")
    pan, expiry, service_code = _card(r)
    r.end()
    _verified(cvv.verify_cvv(cvk, pan, expiry, service_code, value))
    return ""


def _verified(ok: bool) -> None:
    if not ok:
        raise CommandError("01", "verification failed")


def validation_data(data12: str, account: str) -> str:
    """payShield's 12-character validation data ('N' = the account field's last 5 digits),
    padded on the right with 'F' to the 16 hex digits the IBM method encrypts."""
    expanded = data12.replace("N", account[-5:])
    return expanded[:16].ljust(16, "F")


def _verify_ibm(lmk: Lmk, r: Reader, pin_key_type: KeyType) -> str:
    pin_key = r.key(lmk, pin_key_type, "10", pin_key_type.name)
    pvk = r.key(lmk, KeyType.PVK, "11", "PVK")
    max_len = r.digits(2, "maximum PIN length")
    block = _pin_block(r, pin_key)
    fmt = r.pin_format("PIN block format")
    check_len = int(r.digits(2, "check length"))
    pan = r.account(fmt)
    dectab = r.digits(16, "decimalisation table")
    data12 = r.take(12, "PIN validation data")
    offset = r.take(12, "offset")
    r.end()
    pin = pinblock.decrypt_pin(pin_key, fmt, block, pan)
    _check_max_length(len(pin), max_len)
    vdata = validation_data(data12, pinblock.account_field(pan))
    _verified(pinverify.verify_ibm_offset(pvk, pin, offset, vdata, dectab, check_len))
    return ""


def da(lmk: Lmk, r: Reader) -> str:
    return _verify_ibm(lmk, r, KeyType.TPK)


def ea(lmk: Lmk, r: Reader) -> str:
    return _verify_ibm(lmk, r, KeyType.ZPK)


def ba(lmk: Lmk, r: Reader) -> str:
    pin = r.take(12, "PIN").rstrip("F")
    account = r.digits(12, "account number")
    r.end()
    return lmk.encrypt_pin(pin, account)


def de(lmk: Lmk, r: Reader) -> str:
    pvk = r.key(lmk, KeyType.PVK, "10", "PVK")
    pin_under_lmk = r.take(16, "PIN under LMK")
    check_len = int(r.digits(2, "check length"))
    account = r.digits(12, "account number")
    dectab = r.digits(16, "decimalisation table")
    data12 = r.take(12, "PIN validation data")
    r.end()
    pin = lmk.decrypt_pin(pin_under_lmk, account)
    offset = pinverify.ibm_offset(pvk, pin, validation_data(data12, account), dectab, check_len)
    return offset.ljust(12, "F")


def _verify_pvv(lmk: Lmk, r: Reader, pin_key_type: KeyType) -> str:
    pin_key = r.key(lmk, pin_key_type, "10", pin_key_type.name)
    pvk = r.key(lmk, KeyType.PVK, "11", "PVK")
    block = _pin_block(r, pin_key)
    fmt = r.pin_format("PIN block format")
    pan = r.account(fmt)
    pvki = int(r.digits(1, "PVKI"))
    pvv = r.digits(4, "PVV")
    r.end()
    pin = pinblock.decrypt_pin(pin_key, fmt, block, pan)
    _verified(pinverify.verify_pvv(pvk, pan, pvki, pin, pvv))
    return ""


def dc(lmk: Lmk, r: Reader) -> str:
    return _verify_pvv(lmk, r, KeyType.TPK)


def ec(lmk: Lmk, r: Reader) -> str:
    return _verify_pvv(lmk, r, KeyType.ZPK)


def _mac_request(lmk: Lmk, r: Reader) -> tuple[Key, bytes, str, int, int]:
    # The five one-character flags in one take: reading them one by one was a fifth of the command.
    mode, input_format, size_code, algorithm_code, padding = tuple(r.take(5, "mode, input format, size, algorithm, padding"))
    if mode != "0":
        raise CommandError("15", "mode flag must be 0 (single block)")
    if input_format not in "12":
        raise CommandError("15", "input format flag must be 1 (hex) or 2 (text)")
    size = _MAC_SIZES.get(size_code)
    algorithm = _MAC_ALGORITHMS.get(algorithm_code)
    if size is None or algorithm is None or padding not in "12":
        raise CommandError("15", "MAC size 0|1, algorithm 3|6 and padding 1|2 expected")
    key_type = _MAC_KEY_TYPES.get(r.take(3, "key type"))
    if key_type is None:
        raise CommandError("15", "key type must be 003 (TAK) or 008 (ZAK)")
    key = r.key(lmk, key_type, "10", key_type.name)
    length = int.from_bytes(r.hex(4, "message length"), "big")  # in characters
    message = r.hex(length, "message") if input_format == "1" else r.take(length, "message").encode("ascii")
    return key, message, algorithm, int(padding), size


def m6(lmk: Lmk, r: Reader) -> str:
    key, data, algorithm, padding, size = _mac_request(lmk, r)
    r.end()
    return mac.generate(key, data, algorithm, padding)[:size].hex().upper()


def m8(lmk: Lmk, r: Reader) -> str:
    key, data, algorithm, padding, size = _mac_request(lmk, r)
    expected = r.hex(size * 2, "MAC")
    r.end()
    _verified(mac.verify(key, data, expected, algorithm, padding))
    return ""


HANDLERS: dict[str, Callable[[Lmk, Reader], str]] = {
    "NC": nc, "BU": bu, "A0": a0, "FA": fa, "MI": mi, "BA": ba, "CA": ca, "CC": cc, "CW": cw,
    "CY": cy, "DA": da, "EA": ea, "DE": de, "DC": dc, "EC": ec, "M6": m6, "M8": m8,
}


class Dispatcher:
    """Runs host commands against one LMK. `handle` never raises."""

    def __init__(self, lmk: Lmk, header_length: int = DEFAULT_HEADER_LENGTH):
        self.lmk = lmk
        self.header_length = header_length

    def __repr__(self) -> str:
        return f"Dispatcher({self.lmk!r}, header_length={self.header_length})"

    def handle(self, frame: bytes) -> bytes:
        header = frame[: self.header_length]
        try:
            request = parse_request(frame, self.header_length)
        except CommandError as exc:
            return build_response(header, "", exc.code)
        if request.command not in HANDLERS:
            return build_response(header, request.command, "68")
        return build_response(header, request.command, *self.run(request.command, request.data))

    def run(self, command: str, data: str) -> tuple[str, str]:
        """One known command's error code and response data, from its data as text. `handle`
        frames this; the in-process client calls it directly, since building a frame only for
        it to be parsed again costs more than many a command itself. Never raises."""
        try:
            return "00", HANDLERS[command](self.lmk, Reader(data))
        except CommandError as exc:
            code, reason = exc.code, exc.reason
        except pinblock.PinBlockError:
            code, reason = "20", "PIN block invalid"
        except pinblock.PinFormatError:
            code, reason = "23", "PIN block format not allowed"
        except ValueError:
            code, reason = "15", "invalid input"
        except Exception as exc:  # a bug must not take the HSM down
            # Only the type is logged: a library's message could quote an input value.
            code, reason = "15", f"internal error {type(exc).__name__}"
        logs.event("hsm_command_error", command=command, code=code, reason=reason)
        return code, ""
