"""The issuer emulator's PIN check: what an issuer host does with the PIN block the switch
forwards under their shared ZPK. Verifying it with the HSM proves the switch's translation
end to end (a block left under the terminal's TPK does not verify).

Configured in an issuer file's `[issuer]` section: `keys` and `lmk_file` (paths relative to the
file; the LMK else from $CARDSWITCH_LMK), `zpk`, `pvk` and `pin_method` ("pvv" or "ibm"); the
card's `pvki`, `pvv`, `ibm_offset` and `pin_length` come from its `[[cards]]` entry.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from emulators.bank import Account
from emulators.issuer_keystore import issuer_keys
from switch import logs
from switch.core.messages import card_pan
from switch.hsm.client import HsmError, InProcessHsm
from switch.hsm.validation import default_validation_data
from switch.tomlfile import Table
from switch.wire.message import Message

PIN_METHODS = ("pvv", "ibm")
WRONG_PIN = "55"
SYSTEM_ERROR = "96"


@attrs.frozen
class PinCheck:
    hsm: InProcessHsm
    zpk: str = attrs.field(repr=False)  # LMK-encrypted
    pvk: str = attrs.field(repr=False)
    method: str = "pvv"

    async def verdict(self, request: Message, accounts: dict[str, Account]) -> str | None:
        """55 for a wrong PIN, 96 when it cannot be checked, None to go on deciding."""
        pan = card_pan(request) or ""
        account = accounts.get(pan)
        if "52" not in request or request.mti not in ("0100", "0200") or account is None:
            return None
        card = account.extra
        try:
            if self.method == "pvv":
                correct = await self.hsm.verify_pin_pvv("zpk", self.zpk, self.pvk, request["52"], pan, 0,
                                                        int(card.get("pvki", 1)), str(card["pvv"]))
            else:
                correct = await self.hsm.verify_pin_ibm("zpk", self.zpk, self.pvk, request["52"], pan, 0,
                                                        str(card["ibm_offset"]), default_validation_data(pan),
                                                        pin_len=int(card.get("pin_length", 4)))
        except (HsmError, KeyError, ValueError) as exc:
            reason = f"HSM error {exc.code}" if isinstance(exc, HsmError) else "card has no PIN verification data"
            logs.warning("issuer_emulator_pin_unverifiable", reason=reason)
            return SYSTEM_ERROR
        return None if correct else WRONG_PIN


def parse_pin_check(section: Table, base: Path) -> PinCheck | None:
    """The PIN check an `[issuer]` section asks for (`zpk` set), else None."""
    zpk = section.get("zpk", str, None, "the name of a ZPK in the key store")
    pvk = section.get("pvk", str, None, "the name of a PVK in the key store")
    method = section.get("pin_method", str, "pvv", f"one of: {', '.join(PIN_METHODS)}", lambda v: v in PIN_METHODS)
    if zpk is None:
        return None
    if pvk is None:
        raise section.error("pvk", "a value: zpk asks for PIN verification")
    hsm, keys = issuer_keys(section, base, {"zpk": zpk, "pvk": pvk})
    return PinCheck(hsm, keys["zpk"], keys["pvk"], method)
