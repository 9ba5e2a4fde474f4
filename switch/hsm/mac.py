"""MACs: ISO 9797-1 algorithm 3 (ANSI X9.19 retail MAC) over TDES, and AES-CMAC."""

from __future__ import annotations

import secrets

from switch.hsm.keys import Algorithm, Key, aes_cmac, des_cbc_mac, des_decrypt, des_encrypt


def pad(data: bytes, method: int, block: int = 8) -> bytes:
    """ISO 9797-1 padding method 1 (zeros; an empty message becomes one zero block) or 2
    (0x80 then zeros)."""
    if method == 2:
        data += b"\x80"
    elif method != 1:
        raise ValueError("padding must be 1 or 2")
    if data and len(data) % block == 0:
        return data
    return data + bytes(block - len(data) % block)


def retail_mac(key: Key, data: bytes, padding: int = 1) -> bytes:
    """Single-DES CBC-MAC under K1, then the last block decrypted under K2, encrypted under K1."""
    if key.algorithm is not Algorithm.TDES or len(key.material) != 16:
        raise ValueError("X9.19 MAC key must be a double-length TDES key")
    k1, k2 = key.material[:8], key.material[8:]
    state = des_cbc_mac(k1, pad(data, padding))
    return des_encrypt(k1, des_decrypt(k2, state))


def generate(key: Key, data: bytes, algorithm: str = "x9.19", padding: int = 1) -> bytes:
    if algorithm == "x9.19":
        return retail_mac(key, data, padding)
    if algorithm == "cmac":
        if key.algorithm is not Algorithm.AES:
            raise ValueError("CMAC key must be an AES key")
        return aes_cmac(key, data)
    raise ValueError("MAC algorithm must be x9.19 or cmac")


def verify(key: Key, data: bytes, mac: bytes, algorithm: str = "x9.19", padding: int = 1) -> bool:
    """Accepts a MAC truncated to its leftmost 4 or more bytes, as ISO 9797-1 allows."""
    if len(mac) < 4:
        raise ValueError("MAC must be at least 4 bytes")
    return secrets.compare_digest(generate(key, data, algorithm, padding)[: len(mac)], mac)
