"""The issuer emulator's MACs: what an issuer host that asks for MACs does with the switch's
traffic. Every request's MAC (field 64, or 128 with a secondary bitmap) is checked under the ZAK
the two share, over the bytes as they came; a missing or wrong one is answered 63 (or, with
`mac_failure = "drop"`, not answered at all). Every answer is MACed under the ZAK. Network
management (0800: the link's sign-on and echoes) goes without, as the switch sends it.

With a ZMK it also rolls its ZAK over the link, as a real host does (`change_key()`): a new key
under the ZMK in an 0800/101 (switch.core.keychange) to every connected switch, which answers
0810. A request MACed under the key it replaced is still accepted (it may have crossed the
0800 on the wire), and counted in `under_previous`.

Configured in an issuer file's `[issuer]` section: `mac = true`, `zak`, optionally `zmk` and
`mac_failure`, with the `keys` and `lmk_file` the PIN check uses too.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Callable

import attrs
import trio

from emulators.issuer_keystore import issuer_keys
from switch import logs
from switch.core.keychange import KeyChange, key_change_request
from switch.hsm.client import HsmError, InProcessHsm
from switch.hsm.lmk import KeyType
from switch.tomlfile import Table
from switch.wire.dialect import Dialect
from switch.wire.macs import covered, received_mac, with_mac, with_zero_mac
from switch.wire.message import Message

MAC_FAILED = "63"
MAC_FAILURES = ("answer", "drop")
ZAK = KeyType.ZAK.code
ANSWER_TIMEOUT = 5.0  # seconds for the switch's 0810 to a key change


@attrs.define(repr=False)
class IssuerMacs:
    hsm: InProcessHsm
    zak: str  # LMK-encrypted, the key in use
    zmk: str | None = None  # LMK-encrypted; None: the ZAK is never changed
    drop: bool = False  # a request whose MAC fails is not answered (else 63)
    previous: str | None = None  # the ZAK before the last change
    under_previous: int = 0  # requests that verified only under `previous`
    # send functions of the connected switches (emulators.issuer registers them)
    connections: set[Callable[[Message], None]] = attrs.field(factory=set)
    _answered: trio.Event = attrs.field(factory=trio.Event)
    _answer: str | None = None

    def __repr__(self) -> str:
        return "IssuerMacs()"

    async def verifies(self, request: Message, payload: bytes, dialect: Dialect) -> bool:
        """The request's MAC is there and verifies under the ZAK (or the one before it)."""
        found = received_mac(request, payload, dialect)
        if isinstance(found, str):
            logs.warning("issuer_emulator_mac_failed", reason=found, stan=request.get("11"))
            return False
        for key in (self.zak, self.previous):
            if key is not None and await self._verify(key, found.data, found.mac):
                if key is self.previous:
                    self.under_previous += 1
                return True
        logs.warning("issuer_emulator_mac_failed", reason=f"field {found.field}: MAC does not verify",
                     stan=request.get("11"))
        return False

    async def _verify(self, key: str, data: bytes, mac: str) -> bool:
        try:
            return await self.hsm.verify_mac(key, data, mac, key_type_code=ZAK)
        except HsmError:
            return False

    async def seal(self, response: Message, dialect: Dialect) -> bytes:
        """`response` encoded in `dialect` with its MAC under the ZAK."""
        placeholder, field = with_zero_mac(response)
        payload = dialect.encode(placeholder)
        mac = await self.hsm.generate_mac(self.zak, covered(payload, dialect, field), key_type_code=ZAK)
        return with_mac(payload, dialect, field, mac)

    async def change_key(self, stan: str = "000001") -> str:
        """Send every connected switch a new ZAK under the ZMK and use it from now on; returns the
        switch's response code (field 39 of its 0810)."""
        if self.zmk is None:
            raise ValueError("a key change needs the issuer's zmk")
        fresh = await self.hsm.generate_key(ZAK, "U", zmk=self.zmk)
        assert fresh.under_zmk is not None
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%m%d%H%M%S")
        request = key_change_request(KeyChange("ZAK", fresh.under_zmk, fresh.kcv), stan, now)
        self.previous, self.zak = self.zak, fresh.under_lmk
        self._answered, self._answer = trio.Event(), None
        for send in list(self.connections):
            send(request)
        logs.event("issuer_emulator_key_change", type="ZAK", kcv=fresh.kcv, switches=len(self.connections))
        with trio.fail_after(ANSWER_TIMEOUT):
            await self._answered.wait()
        return self._answer or ""

    def answered(self, response: Message) -> None:
        """The switch's 0810 to a key change."""
        self._answer = response.get("39")
        self._answered.set()


def parse_issuer_macs(section: Table, base: Path) -> IssuerMacs | None:
    """The MACs an `[issuer]` section asks for (`mac = true`), else None."""
    mac = section.get("mac", bool, False)
    zak = section.get("zak", str, None, "the name of a ZAK in the key store")
    zmk = section.get("zmk", str, None, "the name of a ZMK in the key store")
    failure = section.get("mac_failure", str, "answer", f"one of: {', '.join(MAC_FAILURES)}",
                          lambda v: v in MAC_FAILURES)
    if not mac:
        return None
    if zak is None:
        raise section.error("zak", "the name of a ZAK: mac = true MACs under it")
    hsm, keys = issuer_keys(section, base, {"zak": zak, **({"zmk": zmk} if zmk else {})})
    return IssuerMacs(hsm, keys["zak"], keys.get("zmk"), drop=failure == "drop")
