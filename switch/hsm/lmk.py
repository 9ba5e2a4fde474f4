"""The local master key (LMK) and how working keys are encrypted under it.

A working key travels and rests only as its LMK encryption, written like payShield's variant
keys: a scheme letter then hex ('U' double-length TDES, 'T' triple-length TDES, and our own
'R1'/'R2'/'R3' for AES-128/192/256). Each key type encrypts under the LMK XOR a type variant,
and each 8-byte part of a key under a further part variant, so a key of one type cannot be used
as another type or have its halves swapped: it decrypts to garbage that fails the DES parity
check (or, for AES, a different key).
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from switch.hsm import pinblock
from switch.hsm.keys import Algorithm, Key, decrypt_ecb, encrypt_ecb, key_check_value, parse_hex

LMK_ENV = "CARDSWITCH_LMK"


class KeyType(enum.Enum):
    """Working key types: value = (payShield-style 3-digit code, LMK variant byte)."""

    ZMK = ("000", 0xA6)
    ZPK = ("001", 0x5A)
    PVK = ("002", 0x6A)
    TAK = ("003", 0xDE)
    ZAK = ("008", 0x2B)
    CVK = ("402", 0x50)
    TPK = ("70D", 0x74)
    TMK = ("80D", 0x9C)

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def variant(self) -> int:
        return self.value[1]

    @classmethod
    def from_code(cls, code: str) -> KeyType:
        for member in cls:
            if member.code == code.upper():
                return member
        raise ValueError("unknown key type code")


_PART_VARIANTS = (0xA6, 0x5A, 0x6A, 0xDE)
_PIN_VARIANT = 0xFA  # PINs held under the LMK (payShield's LMK pair 02-03) get their own
_SCHEMES = {"U": (Algorithm.TDES, 16), "T": (Algorithm.TDES, 24)}
_AES_SCHEMES = {"R1": 16, "R2": 24, "R3": 32}


class KeyParityError(ValueError):
    """A TDES key decrypted from under the LMK fails the parity check: wrong type or corrupt."""


# Hashed by the caches of decrypted keys on every PIN command: the hash is kept, not recomputed.
@attrs.frozen(repr=False, cache_hash=True)
class Lmk:
    """The local master key: a TDES key held in memory only. repr() shows its check value."""

    key: Key

    @classmethod
    def from_hex(cls, text: str) -> Lmk:
        return cls(Key.tdes(parse_hex(text.strip(), "LMK", (16, 24))))

    def check_value(self) -> str:
        """payShield's NC returns a 16-digit LMK check value; ours is the full TDES KCV."""
        return key_check_value(self.key, 16)

    def __repr__(self) -> str:
        return f"Lmk(check_value={self.check_value()})"

    __str__ = __repr__

    def _part_key(self, key_type: KeyType | None, part: int) -> Key:
        lmk = bytearray(self.key.material)
        lmk[0] ^= _PIN_VARIANT if key_type is None else key_type.variant
        lmk[8] ^= _PART_VARIANTS[part]
        return Key.tdes(bytes(lmk))

    def encrypt_key(self, key_type: KeyType, key: Key) -> str:
        """The scheme-prefixed hex form of `key` under this LMK, for key stores and commands."""
        parts = [key.material[i : i + 8] for i in range(0, len(key.material), 8)]
        cipher = b"".join(encrypt_ecb(self._part_key(key_type, n), p) for n, p in enumerate(parts))
        return scheme_prefix(key) + cipher.hex().upper()

    def decrypt_key(self, key_type: KeyType, encrypted: str) -> Key:
        """The clear key; working keys are decrypted once and then kept in memory (never on
        disk), since every PIN translation or verification names the same few keys."""
        return _decrypt_key_cached(self, key_type, encrypted)

    def _decrypt_key(self, key_type: KeyType, encrypted: str) -> Key:
        algorithm, cipher = split_scheme(encrypted)
        parts = [cipher[i : i + 8] for i in range(0, len(cipher), 8)]
        clear = b"".join(decrypt_ecb(self._part_key(key_type, n), p) for n, p in enumerate(parts))
        key = Key(algorithm, clear)
        if not key.has_odd_parity():
            raise KeyParityError(f"{key_type.name} key fails the parity check under this LMK")
        return key


    def encrypt_pin(self, pin: str, pan: str) -> str:
        """A PIN under the LMK (16 hex), bound to the account as an ISO format 0 block."""
        return encrypt_ecb(self._part_key(None, 0), pinblock.encode(0, pin, pan)).hex().upper()

    def decrypt_pin(self, encrypted: str, pan: str) -> str:
        block = parse_hex(encrypted, "PIN under LMK", (8,))
        return pinblock.decode(0, decrypt_ecb(self._part_key(None, 0), block), pan)


@functools.lru_cache(maxsize=4096)
def _decrypt_key_cached(lmk: Lmk, key_type: KeyType, encrypted: str) -> Key:
    return lmk._decrypt_key(key_type, encrypted)


def scheme_prefix(key: Key) -> str:
    if key.algorithm is Algorithm.AES:
        return {16: "R1", 24: "R2", 32: "R3"}[len(key.material)]
    return "U" if len(key.material) == 16 else "T"


def encrypted_key_length(text: str) -> int:
    """How many characters the scheme-prefixed key at the start of `text` occupies."""
    if text[:1] in _SCHEMES:
        return 1 + _SCHEMES[text[0]][1] * 2
    if text[:2] in _AES_SCHEMES:
        return 2 + _AES_SCHEMES[text[:2]] * 2
    raise ValueError("key must start with a scheme: U, T, R1, R2 or R3")


def split_scheme(encrypted: str) -> tuple[Algorithm, bytes]:
    size = encrypted_key_length(encrypted)
    if len(encrypted) != size:
        raise ValueError("encrypted key has the wrong length for its scheme")
    if encrypted[0] in _SCHEMES:
        algorithm, length = _SCHEMES[encrypted[0]]
        return algorithm, parse_hex(encrypted[1:], "encrypted key", (length,))
    return Algorithm.AES, parse_hex(encrypted[2:], "encrypted key")


def with_scheme(encrypted: str) -> str:
    """Accept a bare 32/48-hex TDES key as payShield's U/T forms (what callers often hold)."""
    if encrypted[:1] in _SCHEMES or encrypted[:2] in _AES_SCHEMES:
        return encrypted
    return {32: "U", 48: "T"}.get(len(encrypted), "") + encrypted


def load_lmk(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Lmk:
    """The LMK from a file named on the command line, else from $CARDSWITCH_LMK.

    The file holds the key as hex on one line; lines starting with '#' are comments (the demo
    file uses them to say it is insecure). Errors never echo key material."""
    environ = os.environ if environ is None else environ
    if path is not None:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        text = "".join(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
        source = str(path)
    elif environ.get(LMK_ENV):
        text, source = environ[LMK_ENV], f"${LMK_ENV}"
    else:
        raise ValueError(f"no LMK: set ${LMK_ENV} or pass --lmk-file")
    try:
        return Lmk.from_hex(text)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
