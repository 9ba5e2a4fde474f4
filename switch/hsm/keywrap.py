"""Keys exchanged between zones: a working key encrypted under a zone master key (ZMK).

Plain ECB under the ZMK (the ANSI X9.17 form payShield writes as 'X'/'Y'); AES working keys
keep the 'R1'/'R2'/'R3' scheme letters used under the LMK.
"""

from __future__ import annotations

from switch.hsm.keys import Algorithm, Key, decrypt_ecb, encrypt_ecb, parse_hex

_TDES_SCHEMES = {"X": 16, "Y": 24, "U": 16, "T": 24}
_AES_SCHEMES = {"R1": 16, "R2": 24, "R3": 32}


def wrapped_length(text: str) -> int:
    if text[:1] in _TDES_SCHEMES:
        return 1 + 2 * _TDES_SCHEMES[text[0]]
    if text[:2] in _AES_SCHEMES:
        return 2 + 2 * _AES_SCHEMES[text[:2]]
    raise ValueError("key under ZMK must start with a scheme: X, Y, U, T, R1, R2 or R3")


def wrap(zmk: Key, key: Key) -> str:
    if key.algorithm is Algorithm.AES:
        prefix = {16: "R1", 24: "R2", 32: "R3"}[len(key.material)]
    else:
        prefix = "X" if len(key.material) == 16 else "Y"
    return prefix + encrypt_ecb(zmk, key.material).hex().upper()


def unwrap(zmk: Key, text: str) -> Key:
    size = wrapped_length(text)
    if len(text) != size:
        raise ValueError("key under ZMK has the wrong length for its scheme")
    if text[:1] in _TDES_SCHEMES:
        return Key.tdes(decrypt_ecb(zmk, parse_hex(text[1:], "key under ZMK")))
    return Key.aes(decrypt_ecb(zmk, parse_hex(text[2:], "key under ZMK")))
