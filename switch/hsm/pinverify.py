"""PIN verification values: IBM 3624 offsets and Visa PVVs.

Both derive a value from the PIN verification key (PVK) and card data, so the issuer stores only
the offset or PVV, never the PIN. Comparisons use `secrets.compare_digest`.
"""

from __future__ import annotations

import secrets

from switch.hsm.keys import Key, encrypt_ecb
from switch.hsm.pinblock import account_field, check_pin

DEFAULT_DECTAB = "0123456789012345"


def check_dectab(dectab: str) -> None:
    if not (len(dectab) == 16 and dectab.isascii() and dectab.isdigit()):
        raise ValueError("decimalisation table must be 16 decimal digits")


def check_validation_data(validation_data: str) -> None:
    if len(validation_data) != 16 or any(c not in "0123456789ABCDEFabcdef" for c in validation_data):
        raise ValueError("validation data must be 16 hex digits")


def natural_pin(pvk: Key, validation_data: str, dectab: str, pin_len: int) -> str:
    """IBM 3624 'natural PIN': encrypt the validation data, decimalise, keep pin_len digits."""
    check_dectab(dectab)
    check_validation_data(validation_data)
    if not 4 <= pin_len <= 12:
        raise ValueError("PIN length must be 4 to 12")
    digits = encrypt_ecb(pvk, bytes.fromhex(validation_data)).hex()
    return "".join(dectab[int(c, 16)] for c in digits)[:pin_len]


def ibm_offset(pvk: Key, pin: str, validation_data: str, dectab: str, pin_len: int | None = None) -> str:
    """Offset = PIN - natural PIN, digit by digit mod 10, over the first pin_len digits."""
    check_pin(pin)
    pin_len = len(pin) if pin_len is None else pin_len
    if pin_len > len(pin):
        raise ValueError("PIN length must not exceed the PIN's digits")
    natural = natural_pin(pvk, validation_data, dectab, pin_len)
    return "".join(str((int(p) - int(n)) % 10) for p, n in zip(pin, natural))


def verify_ibm_offset(
    pvk: Key, pin: str, offset: str, validation_data: str, dectab: str, pin_len: int
) -> bool:
    if len(offset) < pin_len or not offset[:pin_len].isdigit():
        raise ValueError("offset must hold at least PIN-length decimal digits")
    if len(pin) < pin_len:
        return False
    expected = ibm_offset(pvk, pin, validation_data, dectab, pin_len)
    return secrets.compare_digest(expected, offset[:pin_len])


def visa_pvv(pvk: Key, pan: str, pvki: int, pin: str) -> str:
    """Visa PVV: encrypt the TSP (11 PAN digits before the check digit, PVKI, first 4 PIN
    digits; `pan` may be the 12-digit account field); take decimal digits left to right, then the A-F nibbles minus 10, first four."""
    check_pin(pin)
    if not 0 <= pvki <= 9:
        raise ValueError("PVKI must be a digit 0-9")
    tsp = account_field(pan)[-11:] + str(pvki) + pin[:4]
    return decimalise(encrypt_ecb(pvk, bytes.fromhex(tsp)).hex().upper(), 4)


def verify_pvv(pvk: Key, pan: str, pvki: int, pin: str, pvv: str) -> bool:
    return secrets.compare_digest(visa_pvv(pvk, pan, pvki, pin), pvv)


def decimalise(hex_text: str, count: int) -> str:
    """The Visa decimalisation shared by PVV and CVV."""
    digits = [c for c in hex_text if c.isdigit()]
    digits += [str(int(c, 16) - 10) for c in hex_text if not c.isdigit()]
    return "".join(digits[:count])
