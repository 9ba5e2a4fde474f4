"""Visa CVV / CVV2 / iCVV (the same algorithm; CVV2 uses service code 000, iCVV 999).

The CVK is a double-length key used as two single-DES halves A and B, as the Visa method says.
"""

from __future__ import annotations

import secrets

from switch.hsm.keys import Algorithm, Key, des_encrypt, encrypt_ecb, xor
from switch.hsm.pinverify import decimalise

CVV2_SERVICE_CODE = "000"
ICVV_SERVICE_CODE = "999"


def _check_inputs(cvk: Key, pan: str, expiry_yymm: str, service_code: str) -> None:
    if cvk.algorithm is not Algorithm.TDES or len(cvk.material) != 16:
        raise ValueError("CVK must be a double-length TDES key (CVK A | CVK B)")
    if not (pan.isascii() and pan.isdigit() and 1 <= len(pan) <= 19):
        raise ValueError("PAN must be 1 to 19 digits")
    if not (len(expiry_yymm) == 4 and expiry_yymm.isascii() and expiry_yymm.isdigit()):
        raise ValueError("expiry must be 4 digits YYMM")
    if not (len(service_code) == 3 and service_code.isascii() and service_code.isdigit()):
        raise ValueError("service code must be 3 digits")


def cvv(cvk: Key, pan: str, expiry_yymm: str, service_code: str) -> str:
    _check_inputs(cvk, pan, expiry_yymm, service_code)
    data = bytes.fromhex((pan + expiry_yymm + service_code).ljust(32, "0"))
    step = des_encrypt(cvk.material[:8], data[:8])
    result = encrypt_ecb(cvk, xor(step, data[8:]))
    return decimalise(result.hex().upper(), 3)


def verify_cvv(cvk: Key, pan: str, expiry_yymm: str, service_code: str, value: str) -> bool:
    return secrets.compare_digest(cvv(cvk, pan, expiry_yymm, service_code), value)
