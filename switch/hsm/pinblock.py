"""ISO 9564-1 PIN blocks: formats 0, 1, 3 (8-byte, TDES) and 4 (16-byte, AES).

A PIN exists in the clear only between `decrypt_pin` and `encrypt_pin` inside the HSM. Errors
name what was wrong with a block and never carry the PIN, the block or the PAN.
"""

from __future__ import annotations

import secrets

from switch.hsm.keys import Algorithm, Key, decrypt_ecb, encrypt_ecb, xor

FORMATS = (0, 1, 3, 4)
# Formats that bind the PIN block to the PAN; translating from one of these to format 1 would
# drop that binding, which ISO 9564 / PCI PIN forbid.
_PAN_BOUND = (0, 3, 4)


class PinBlockError(ValueError):
    """The block does not decode to a valid PIN (wrong key, wrong PAN or corrupted)."""


class PinFormatError(ValueError):
    """Unknown PIN block format, a format the key cannot carry, or a forbidden translation."""


def check_pin(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("PIN must be 4 to 12 decimal digits")


def account_field(pan: str) -> str:
    """The 12 rightmost PAN digits excluding the check digit. A 12-digit input is taken as
    that field already, which is what payShield commands carry instead of the PAN."""
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise ValueError("PAN must be 13 to 19 digits (or the 12-digit account number)")
    return pan if len(pan) == 12 else pan[-13:-1]


def _random_nibbles(count: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(count))


def encode(fmt: int, pin: str, pan: str) -> bytes:
    """Clear PIN block for formats 0, 1 and 3; for format 4 the clear 16-byte PIN field."""
    check_pin(pin)
    head = f"{fmt}{len(pin):X}{pin}"
    if fmt == 0:
        return xor(bytes.fromhex(head.ljust(16, "F")), _pan_block(pan))
    if fmt == 1:
        return bytes.fromhex(head + _random_nibbles(16 - len(head), "0123456789ABCDEF"))
    if fmt == 3:
        field = head + _random_nibbles(16 - len(head), "ABCDEF")
        return xor(bytes.fromhex(field), _pan_block(pan))
    if fmt == 4:
        return bytes.fromhex(head.ljust(16, "A")) + secrets.token_bytes(8)
    raise PinFormatError("PIN block format must be 0, 1, 3 or 4")


def _pan_block(pan: str) -> bytes:
    return bytes.fromhex("0000" + account_field(pan))


def pan_field_iso4(pan: str) -> bytes:
    """Format 4 PAN field: (PAN length - 12) nibble, PAN left-padded to 12 digits, zero fill."""
    if not (pan.isascii() and pan.isdigit() and 1 <= len(pan) <= 19):
        raise ValueError("PAN must be 1 to 19 digits")
    return bytes.fromhex(f"{max(len(pan) - 12, 0)}{pan.rjust(12, '0')}".ljust(32, "0"))


def decode(fmt: int, block: bytes, pan: str) -> str:
    """The PIN inside a clear block (format 4: the clear PIN field); checks every pad nibble."""
    if fmt in (0, 3):
        block = xor(block, _pan_block(pan))
    elif fmt not in (1, 4):
        raise PinFormatError("PIN block format must be 0, 1, 3 or 4")
    text = block.hex().upper()
    if text[0] != str(fmt):
        raise PinBlockError("PIN block control field does not match its format")
    length = int(text[1], 16)
    if not 4 <= length <= 12:
        raise PinBlockError("PIN block carries a PIN length outside 4..12")
    pin, fill = text[2 : 2 + length], text[2 + length : 16]
    allowed = {0: "F", 1: "0123456789ABCDEF", 3: "ABCDEF", 4: "A"}[fmt]
    if not pin.isdigit() or any(c not in allowed for c in fill):
        raise PinBlockError("PIN block digits or fill are invalid")
    return pin


def _check_key(key: Key, fmt: int) -> None:
    wanted = Algorithm.AES if fmt == 4 else Algorithm.TDES
    if key.algorithm is not wanted:
        raise PinFormatError(f"PIN block format {fmt} needs a {wanted.value} key")


def block_length(fmt: int) -> int:
    return 16 if fmt == 4 else 8


def encrypt_pin(key: Key, fmt: int, pin: str, pan: str) -> bytes:
    _check_key(key, fmt)
    clear = encode(fmt, pin, pan)
    if fmt != 4:
        return encrypt_ecb(key, clear)
    # ISO 9564-1 format 4: encipher the PIN field, XOR the PAN field, encipher again.
    return encrypt_ecb(key, xor(encrypt_ecb(key, clear), pan_field_iso4(pan)))


def decrypt_pin(key: Key, fmt: int, block: bytes, pan: str) -> str:
    _check_key(key, fmt)
    if len(block) != block_length(fmt):
        raise PinBlockError(f"format {fmt} PIN block must be {block_length(fmt)} bytes")
    clear = decrypt_ecb(key, block)
    if fmt == 4:
        clear = decrypt_ecb(key, xor(clear, pan_field_iso4(pan)))
    return decode(fmt, clear, pan)


def check_translation(src_fmt: int, dst_fmt: int) -> None:
    for fmt in (src_fmt, dst_fmt):
        if fmt not in FORMATS:
            raise PinFormatError("PIN block format must be 0, 1, 3 or 4")
    if src_fmt in _PAN_BOUND and dst_fmt == 1:
        raise PinFormatError("translation from a PAN-bound format to format 1 is not allowed")


def translate(
    src_key: Key, src_fmt: int, dst_key: Key, dst_fmt: int, block: bytes, pan: str
) -> tuple[int, bytes]:
    """Re-encrypt a PIN block under another key and format; returns (PIN length, new block)."""
    check_translation(src_fmt, dst_fmt)
    pin = decrypt_pin(src_key, src_fmt, block, pan)
    return len(pin), encrypt_pin(dst_key, dst_fmt, pin, pan)
