"""Key objects, DES parity, key check values and the raw block ciphers.

Everything else in the HSM encrypts through the few functions here, so the choice of library
(`cryptography`, never a hand-written cipher) and the handling of single-DES steps live in one
place. A `Key` never shows its material in repr() or str(): only its algorithm and check value.
"""

from __future__ import annotations

import enum
import functools
import re

import attrs
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes


class Algorithm(enum.Enum):
    TDES = "tdes"
    AES = "aes"


_HEX = re.compile(r"[0-9A-Fa-f]*")
TDES_LENGTHS = (16, 24)
AES_LENGTHS = (16, 24, 32)


# Hashed by the caches of decrypted keys on every PIN command: the hash is kept, not recomputed.
@attrs.frozen(repr=False, cache_hash=True)
class Key:
    """A clear key. Lives only in memory inside the HSM package."""

    algorithm: Algorithm
    material: bytes = attrs.field()

    @material.validator
    def _check_length(self, _attribute: object, value: bytes) -> None:
        allowed = TDES_LENGTHS if self.algorithm is Algorithm.TDES else AES_LENGTHS
        if len(value) not in allowed:
            raise ValueError(f"{self.algorithm.value} key must be {allowed} bytes long")

    @classmethod
    def tdes(cls, material: bytes) -> Key:
        return cls(Algorithm.TDES, bytes(material))

    @classmethod
    def aes(cls, material: bytes) -> Key:
        return cls(Algorithm.AES, bytes(material))

    def kcv(self) -> str:
        return key_check_value(self)

    def has_odd_parity(self) -> bool:
        """DES keys carry a parity bit per byte; AES keys have none, so they always pass."""
        return self.algorithm is Algorithm.AES or odd_parity(self.material)

    def __repr__(self) -> str:
        return f"Key({self.algorithm.value}-{len(self.material) * 8}, kcv={self.kcv()})"

    __str__ = __repr__


def odd_parity(material: bytes) -> bool:
    """True when every byte has an odd number of set bits (the DES key parity rule)."""
    return all(bin(byte).count("1") % 2 == 1 for byte in material)


def with_odd_parity(material: bytes) -> bytes:
    """Flip each byte's low bit where needed so the key passes the DES parity check."""
    return bytes(b if bin(b).count("1") % 2 else b ^ 1 for b in material)


def _tdes(material: bytes) -> TripleDES:
    # `cryptography` wants 24-byte keys: single DES runs as K1=K2=K3, double as K1,K2,K1.
    if len(material) == 8:
        return TripleDES(material * 3)
    return TripleDES(material + material[:8] if len(material) == 16 else material)


CONTEXTS_KEPT = 256  # keys whose cipher contexts stay ready (working keys, LMK components)


@functools.lru_cache(maxsize=CONTEXTS_KEPT)
def _ecb_contexts(algorithm: Algorithm, material: bytes) -> tuple[CipherContext, CipherContext]:
    """An encryptor and a decryptor per key, kept. ECB carries no state from one block to the
    next, so one context serves every call as long as each call passes whole blocks (checked in
    `_ecb`); building a context costs more than the encryption of a PIN block itself."""
    if algorithm is Algorithm.TDES:
        cipher = Cipher(_tdes(material), modes.ECB())
    else:
        cipher = Cipher(algorithms.AES(material), modes.ECB())
    return cipher.encryptor(), cipher.decryptor()


def _ecb(algorithm: Algorithm, material: bytes, data: bytes, decrypt: bool) -> bytes:
    if len(data) % (8 if algorithm is Algorithm.TDES else 16):
        raise ValueError("The length of the provided data is not a multiple of the block length.")
    return _ecb_contexts(algorithm, material)[decrypt].update(data)


def encrypt_ecb(key: Key, data: bytes) -> bytes:
    return _ecb(key.algorithm, key.material, data, False)


def decrypt_ecb(key: Key, data: bytes) -> bytes:
    return _ecb(key.algorithm, key.material, data, True)


def des_encrypt(material8: bytes, block: bytes) -> bytes:
    """Single-DES step, needed by CVV and the retail MAC (which use the key halves apart)."""
    return _ecb(Algorithm.TDES, material8, block, False)


def des_decrypt(material8: bytes, block: bytes) -> bytes:
    return _ecb(Algorithm.TDES, material8, block, True)


@functools.lru_cache(maxsize=CONTEXTS_KEPT)
def _cbc_chain(material8: bytes) -> list:
    """A CBC encryptor per key, kept (building one costs more than MACing a message), with the
    last block it put out: it chains on from that block at its next call."""
    return [Cipher(_tdes(material8), modes.CBC(bytes(8))).encryptor(), bytes(8)]


def des_cbc_mac(material8: bytes, data: bytes) -> bytes:
    """Single-DES CBC-MAC (zero IV) of whole blocks, the retail MAC's first stage: the last block
    of their CBC encryption, in one call to the cipher rather than a Python step per block. The
    kept encryptor chains on from its previous output; XORing that into the first block cancels
    it, as if the chain started from a zero IV."""
    if not data or len(data) % 8:
        raise ValueError("CBC-MAC input must be whole 8-byte blocks")
    chain = _cbc_chain(material8)
    encryptor, previous = chain
    chain[1] = encryptor.update(xor(data[:8], previous) + data[8:])[-8:]
    return chain[1]


def aes_cmac(key: Key, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key.material))
    mac.update(data)
    return mac.finalize()


def key_check_value(key: Key, length: int = 6) -> str:
    """KCV in hex: TDES encrypts a zero block (ECB); AES takes the CMAC of a zero block
    (ANSI X9.24-1:2017), so an AES KCV never reveals an ECB ciphertext of a known block."""
    if key.algorithm is Algorithm.TDES:
        value = encrypt_ecb(key, bytes(8))
    else:
        value = aes_cmac(key, bytes(16))
    return value.hex().upper()[:length]


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise ValueError("xor: blocks of different lengths")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def parse_hex(text: str, what: str, lengths: tuple[int, ...] | None = None) -> bytes:
    """Hex text to bytes; the error names the argument, never echoes the (secret) value."""
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise ValueError(f"{what} must be an even number of hexadecimal digits")
    value = bytes.fromhex(text)
    if lengths is not None and len(value) not in lengths:
        wanted = " or ".join(str(n * 2) for n in lengths)
        raise ValueError(f"{what} must be {wanted} hex digits")
    return value
