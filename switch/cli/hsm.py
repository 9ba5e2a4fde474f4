"""`cardswitch hsm ...`: run the HSM server, compute values from clear inputs, make keys.

Bad input raises UsageError with one line naming the argument and what was expected; the
message never repeats the value given (it may be a PIN or a key).
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Callable

import trio

from switch import logs
from switch.addresses import address_option
from switch.errors import UsageError
from switch.hsm import cvv, mac, pinblock, pinverify
from switch.hsm.commands import validation_data
from switch.hsm.keys import Key, parse_hex, with_odd_parity
from switch.hsm.keystore import Keystore, render_entry
from switch.hsm.lmk import KeyType, Lmk, load_lmk
from switch.hsm.server import serve_hsm
from switch.tlsoptions import add_server_options, server_config


def register(subparsers: argparse._SubParsersAction) -> None:
    hsm = subparsers.add_parser("hsm", help="software HSM: serve host commands, calculators")
    commands = hsm.add_subparsers(dest="hsm_command", metavar="HSM_COMMAND", required=True)

    serve = commands.add_parser("serve", help="serve payShield-style host commands over TCP")
    serve.add_argument("--listen", metavar="HOST:PORT",
                       help="address to listen on (port 0: any free port, logged at start)")
    serve.add_argument("--port", type=int, help="alias: the port of --listen, 0 to 65535 (0: any free port)")
    serve.add_argument("--host", help="alias: the host of --listen (default 127.0.0.1)")
    serve.add_argument("--lmk-file", help="LMK file (default: $CARDSWITCH_LMK)")
    serve.add_argument("--keys", help="key store to check against the LMK at start-up")
    serve.add_argument("--header-length", type=int, default=4, help="characters of message header before each command")
    serve.add_argument("--log-file", help="write JSON log lines here instead of stderr")
    add_server_options(serve)
    serve.set_defaults(func=_serve)

    genkey = commands.add_parser("genkey", help="new random key under the LMK, as a key store entry")
    genkey.add_argument("--type", required=True, help=", ".join(t.name for t in KeyType))
    genkey.add_argument("--name", required=True, help="the key's name in the key store")
    genkey.add_argument("--aes", type=int, choices=(128, 192, 256), help="AES key of this size (default: double-length TDES)")
    genkey.add_argument("--lmk-file", help="LMK file (default: $CARDSWITCH_LMK)")
    genkey.set_defaults(func=_genkey)

    calc = commands.add_parser("calc", help="payment crypto calculator on clear values")
    calcs = calc.add_subparsers(dest="calc_command", metavar="CALC", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], dict[str, object]], help_text: str) -> argparse.ArgumentParser:
        parser = calcs.add_parser(name, help=help_text)
        parser.add_argument("--json", action="store_true", help="print a JSON object")
        parser.set_defaults(func=lambda args: _print(handler(args), args.json))
        return parser

    p = add("kcv", _kcv, "key check value of a DES, TDES or AES key")
    p.add_argument("--key", required=True, help="clear key, hex (16, 32 or 48 digits)")
    p.add_argument("--aes", action="store_true", help="treat a 32/48-hex key as AES, not TDES")
    p = add("cvv", _cvv, "Visa CVV (CVV2: service code 000, iCVV: 999)")
    p.add_argument("--cvk", required=True, help="clear CVK pair, 32 hex digits")
    p.add_argument("--pan", required=True, help="the card number")
    p.add_argument("--expiry", required=True, help="YYMM")
    p.add_argument("--service-code", required=True, help="3 digits (000 for CVV2, 999 for iCVV)")
    p = add("pvv", _pvv, "Visa PVV")
    p.add_argument("--pvk", required=True, help="clear PVK pair, 32 hex digits")
    p.add_argument("--pan", required=True, help="the card number")
    p.add_argument("--pvki", required=True, help="PVK index, one digit")
    p.add_argument("--pin", required=True, help="the clear PIN")
    p = add("ibm-offset", _ibm_offset, "IBM 3624 PIN offset")
    p.add_argument("--pvk", required=True, help="clear PIN verification key, hex")
    p.add_argument("--pin", required=True, help="the clear PIN")
    p.add_argument("--validation-data", required=True,
                   help="16 hex digits, or payShield's 12 characters (hex digits and N, N = last 5 account digits)")
    p.add_argument("--pan", help="the card number, for N in 12-character validation data")
    p.add_argument("--dectab", default=pinverify.DEFAULT_DECTAB, help="decimalisation table, 16 digits")
    p.add_argument("--pin-length", help="digits the offset covers (default: the PIN's length)")
    p = add("pinblock", _pinblock, "ISO 9564 PIN block, clear or encrypted")
    p.add_argument("--format", required=True, help="0, 1, 3 or 4")
    p.add_argument("--pin", required=True, help="the clear PIN")
    p.add_argument("--pan", required=True, help="the card number")
    p.add_argument("--key", help="encrypt under this key (TDES for 0/1/3, AES for 4)")
    p = add("mac", _mac, "ISO 9797-1 alg. 3 (X9.19) or AES-CMAC")
    p.add_argument("--key", required=True, help="clear MAC key, hex")
    p.add_argument("--data", required=True, help="hex, at least one byte")
    p.add_argument("--algorithm", required=True, help="x9.19 or cmac")
    p.add_argument("--padding", default="1", help="ISO 9797-1 padding method 1 or 2 (x9.19)")


def _print(result: dict[str, object], as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(next(iter(result.values())))
    return 0


def _hex(value: str, option: str, lengths: tuple[int, ...] | None = None) -> bytes:
    try:
        return parse_hex(value, option, lengths)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _digits(value: str, option: str, low: int, high: int) -> str:
    if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
        span = str(low) if low == high else f"{low} to {high}"
        raise UsageError(f"{option} must be {span} decimal digits")
    return value


def _tdes(value: str, option: str, lengths: tuple[int, ...] = (16, 24)) -> Key:
    return Key.tdes(_hex(value, option, lengths))


def _kcv(args: argparse.Namespace) -> dict[str, object]:
    if args.aes:
        key = Key.aes(_hex(args.key, "--key", (16, 24, 32)))
    else:
        material = _hex(args.key, "--key", (8, 16, 24, 32))
        if len(material) == 8:  # single DES: K1 = K2 = K3 encrypts exactly as DES does
            single = Key.tdes(material * 2)
            return {"kcv": single.kcv(), "algorithm": "des", "parity_ok": single.has_odd_parity()}
        key = Key.aes(material) if len(material) == 32 else Key.tdes(material)
    result: dict[str, object] = {"kcv": key.kcv(), "algorithm": key.algorithm.value}
    if not args.aes and key.algorithm.value == "tdes":
        result["parity_ok"] = key.has_odd_parity()
    return result


def _cvv(args: argparse.Namespace) -> dict[str, object]:
    cvk = _tdes(args.cvk, "--cvk", (16,))
    pan = _digits(args.pan, "--pan", 12, 19)
    expiry = _digits(args.expiry, "--expiry (YYMM)", 4, 4)
    service_code = _digits(args.service_code, "--service-code", 3, 3)
    return {"cvv": cvv.cvv(cvk, pan, expiry, service_code)}


def _pvv(args: argparse.Namespace) -> dict[str, object]:
    pvk = _tdes(args.pvk, "--pvk")
    pan = _digits(args.pan, "--pan", 13, 19)
    pvki = int(_digits(args.pvki, "--pvki", 1, 1))
    pin = _digits(args.pin, "--pin", 4, 12)
    return {"pvv": pinverify.visa_pvv(pvk, pan, pvki, pin)}


def _ibm_offset(args: argparse.Namespace) -> dict[str, object]:
    pvk = _tdes(args.pvk, "--pvk")
    pin = _digits(args.pin, "--pin", 4, 12)
    vdata = _validation_data(args.validation_data, args.pan)
    dectab = _digits(args.dectab, "--dectab", 16, 16)
    pin_len = len(pin) if args.pin_length is None else int(_digits(args.pin_length, "--pin-length", 1, 2))
    if not 4 <= pin_len <= len(pin):
        raise UsageError("--pin-length must be from 4 to the number of PIN digits")
    return {"offset": pinverify.ibm_offset(pvk, pin, vdata, dectab, pin_len)}


def _validation_data(value: str, pan: str | None) -> str:
    """16 hex digits as given, or payShield's 12 characters expanded as the DA/EA commands do."""
    if len(value) == 16:
        return _hex(value, "--validation-data", (8,)).hex().upper()
    data12 = value.upper()
    if len(data12) != 12 or any(c not in "0123456789ABCDEFN" for c in data12):
        raise UsageError("--validation-data must be 16 hex digits, or 12 characters of hex digits and N")
    if "N" not in data12:
        return validation_data(data12, "")
    if pan is None:
        raise UsageError("--pan is needed: N in --validation-data stands for the last 5 digits of its account number")
    try:
        account = pinblock.account_field(pan)
    except ValueError:
        raise UsageError("--pan must be 13 to 19 decimal digits (or the 12-digit account number)") from None
    return validation_data(data12, account)


def _pinblock(args: argparse.Namespace) -> dict[str, object]:
    if args.format not in ("0", "1", "3", "4"):
        raise UsageError("--format must be 0, 1, 3 or 4")
    fmt = int(args.format)
    pin = _digits(args.pin, "--pin", 4, 12)
    pan = _digits(args.pan, "--pan", 1 if fmt == 4 else 13, 19)
    if args.key is None:
        block = pinblock.encode(fmt, pin, pan)
        result: dict[str, object] = {"pin_block": block.hex().upper(), "format": fmt, "encrypted": False}
        if fmt == 4:
            result = {"pin_field": block.hex().upper(), "pan_field": pinblock.pan_field_iso4(pan).hex().upper(),
                      "format": fmt, "encrypted": False}
        return result
    if fmt == 4:
        key = Key.aes(_hex(args.key, "--key", (16, 24, 32)))
    else:
        key = _tdes(args.key, "--key")
    encrypted = pinblock.encrypt_pin(key, fmt, pin, pan)
    return {"pin_block": encrypted.hex().upper(), "format": fmt, "encrypted": True, "kcv": key.kcv()}


def _mac(args: argparse.Namespace) -> dict[str, object]:
    data = _hex(args.data, "--data")
    if not data:
        raise UsageError("--data must hold at least one byte (2 hex digits)")
    if args.algorithm == "x9.19":
        key = _tdes(args.key, "--key", (16,))
    elif args.algorithm == "cmac":
        key = Key.aes(_hex(args.key, "--key", (16, 24, 32)))
    else:
        raise UsageError("--algorithm must be x9.19 or cmac")
    if args.padding not in ("1", "2"):
        raise UsageError("--padding must be 1 or 2")
    return {"mac": mac.generate(key, data, args.algorithm, int(args.padding)).hex().upper(),
            "algorithm": args.algorithm}


def _lmk(lmk_file: str | None) -> Lmk:
    try:
        return load_lmk(lmk_file)
    except OSError as exc:
        raise UsageError(f"--lmk-file: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _serve(args: argparse.Namespace) -> int:
    host, port = address_option(args.listen, "--listen", args.host, args.port,
                                default_host="127.0.0.1", default_port=None, any_port=True)
    if not 0 <= args.header_length <= 32:
        raise UsageError("--header-length must be 0 to 32")
    tls = server_config(args)
    lmk = _lmk(args.lmk_file)
    if args.keys:
        Keystore.load(args.keys, lmk)
    logs.configure(args.log_file)
    trio.run(lambda: serve_hsm(port, host, lmk, header_length=args.header_length, tls=tls))
    return 0


def _genkey(args: argparse.Namespace) -> int:
    try:
        key_type = KeyType[args.type.upper()]
    except KeyError:
        raise UsageError(f"--type must be one of {', '.join(t.name for t in KeyType)}") from None
    lmk = _lmk(args.lmk_file)
    if args.aes:
        key = Key.aes(secrets.token_bytes(args.aes // 8))
    else:
        key = Key.tdes(with_odd_parity(secrets.token_bytes(16)))
    print(render_entry(args.name, key_type, lmk.encrypt_key(key_type, key), key.kcv()), end="")
    return 0
