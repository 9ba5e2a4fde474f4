"""An issuer's key change (0800/101, switch.core.keychange) taken into the running switch.

The new ZPK or ZAK arrives under the zone master key shared with the issuer (`[[issuers]] zmk`);
the HSM re-encrypts it under the LMK (FA for a ZPK, MI for a ZAK) and gives its check value,
which must be the one the issuer sent. The issuer's configured key name (`zpk`, `zak`) then
names the new key in the switch's working keys, for every request from then on: no restart,
no file written (a restart takes the key store's key again, until the issuer changes it anew).
Logged: `key_changed` (issuer, key name, type, check value) or `key_change_refused` (why);
never a key.
"""

from __future__ import annotations

from switch import logs
from switch.config import HsmConfig, IssuerConfig
from switch.core.codes import RC
from switch.core.keychange import read_key_change
from switch.hsm.client import HsmError, HsmUnavailable, InProcessHsm, TcpHsm
from switch.wire.message import Message


class IssuerKeys:
    def __init__(self, hsm: InProcessHsm | TcpHsm, config: HsmConfig):
        self._hsm = hsm
        self._keys = config.keys  # by name, LMK-encrypted: the switch's working keys

    async def change(self, issuer: IssuerConfig, request: Message) -> str:
        """Apply the key change `request` (an 0800/101 from `issuer`) carries; the response
        code for the issuer's 0810."""
        change = read_key_change(request)
        if change is None:
            return _refused(issuer, RC.FORMAT_ERROR, "field 48: no key change (type, key under ZMK, check value)")
        name = issuer.zpk if change.key_type == "ZPK" else issuer.zak
        if name is None or issuer.zmk is None:
            what = "zmk" if issuer.zmk is None else change.key_type.lower()
            return _refused(issuer, RC.SYSTEM_ERROR, f"no {what} configured for this issuer")
        importer = self._hsm.import_zpk if change.key_type == "ZPK" else self._hsm.import_zak
        try:
            imported = await importer(self._keys[issuer.zmk], change.under_zmk)
        except (HsmUnavailable, HsmError) as exc:
            code = f"HSM error {exc.code}" if isinstance(exc, HsmError) else "HSM unavailable"
            return _refused(issuer, RC.SYSTEM_ERROR, f"{change.key_type}: {code}")
        if imported.kcv != change.kcv:
            return _refused(issuer, RC.SYSTEM_ERROR, f"{change.key_type}: check value does not match the key")
        self._keys[name] = imported.under_lmk
        logs.event("key_changed", issuer=issuer.name, key=name, type=change.key_type, kcv=imported.kcv)
        return RC.APPROVED


def _refused(issuer: IssuerConfig, code: str, reason: str) -> str:
    logs.warning("key_change_refused", issuer=issuer.name, rc=code, reason=reason)
    return code
