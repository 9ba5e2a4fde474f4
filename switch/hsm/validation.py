"""Card validation values by key name: the PIN validation data the switch verifies IBM 3624 PINs
with (`default_validation_data`, on the transaction path), and what issuers and terminals need.

What an issuer keeps on file for a card (PVV, IBM offset, CVV, CVV2, iCVV) and a terminal's PIN
block are computed here, inside the HSM package, so callers handle only results and never a
clear key. The one exception is `insecure_key_hex`, for keys under a published test LMK (the demo's):
a test terminal loads its TAK in clear, as a terminal's key injection would.
"""

from __future__ import annotations

from switch.hsm import cvv, pinblock, pinverify
from switch.hsm.commands import validation_data
from switch.hsm.keystore import Keystore


def default_validation_data(pan: str) -> str:
    """The IBM 3624 validation data for a card with none on file: the first 11 PAN digits then
    'N' (the account field's last 5 digits), which expands to the 16 hex digits the method
    encrypts."""
    return pan[:11] + "N"


def demo_values(
    keystore: Keystore,
    pan: str,
    expiry_yymm: str,
    service_code: str,
    pin: str,
    *,
    pvk: str,
    cvk: str,
    pvki: int = 1,
    dectab: str = pinverify.DEFAULT_DECTAB,
) -> dict[str, str | int]:
    """PVV, IBM offset and the three CVVs for one card under the named PVK and CVK.

    The result carries what an issuer keeps on file (and what `verify_pin_ibm` /
    `verify_pin_pvv` / `verify_cvv` take), not the PIN itself."""
    pvk_key, cvk_key = keystore.clear_key(pvk), keystore.clear_key(cvk)
    vdata12 = default_validation_data(pan)
    vdata = validation_data(vdata12, pinblock.account_field(pan))
    return {
        "pvki": pvki,
        "pvv": pinverify.visa_pvv(pvk_key, pan, pvki, pin),
        "ibm_offset": pinverify.ibm_offset(pvk_key, pin, vdata, dectab),
        "pin_length": len(pin),
        "validation_data": vdata12,
        "dectab": dectab,
        "cvv": cvv.cvv(cvk_key, pan, expiry_yymm, service_code),
        "cvv2": cvv.cvv(cvk_key, pan, expiry_yymm, cvv.CVV2_SERVICE_CODE),
        "icvv": cvv.cvv(cvk_key, pan, expiry_yymm, cvv.ICVV_SERVICE_CODE),
    }


def encrypt_pin_block(keystore: Keystore, tpk_name: str, pin: str, pan: str, fmt: int = 0) -> str:
    """The field-52 PIN block a terminal sends: `pin` under the named TPK, as hex."""
    return pinblock.encrypt_pin(keystore.clear_key(tpk_name), fmt, pin, pan).hex().upper()


def insecure_key_hex(keystore: Keystore, name: str) -> str:
    """The clear key `name` in hex. Only for key stores under a published test LMK (the demo's,
    whose keys are insecure anyway): `cardswitch demo --terminals` hands a test terminal its TAK."""
    return keystore.clear_key(name).material.hex().upper()
