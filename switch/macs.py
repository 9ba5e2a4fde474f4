"""Message MACs through the HSM, for the running switch: terminals' requests are checked under
their TAK and their answers MACed under it; issuers' requests are MACed under their ZAK and their
answers checked under it (switch.links).

The HSM (in-process, or over TCP: host commands M6 and M8) computes and checks every MAC, under
the LMK-encrypted keys the switch names (`[hsm] keys`, replaced in memory by an issuer's key
change); switch.wire.macs says which bytes a MAC covers. An HSM fault is logged with the command,
its code and the key's name, never a MAC or a key.
"""

from __future__ import annotations

from switch import logs
from switch.config import HsmConfig
from switch.hsm.client import HsmError, HsmUnavailable, InProcessHsm, TcpHsm
from switch.hsm.lmk import KeyType
from switch.wire.dialect import Dialect, MessageEncodeError
from switch.wire.macs import covered, mac_failure, received_mac, with_mac, with_zero_mac
from switch.wire.message import Message


class Macs:
    def __init__(self, hsm: InProcessHsm | TcpHsm, config: HsmConfig):
        self._hsm = hsm
        self._keys = config.keys  # by name, LMK-encrypted: the switch's working keys
        self._types = config.key_types

    def _type_code(self, key: str) -> str:
        """The HSM's code for the key's type: TAK 003, ZAK 008."""
        return KeyType[self._types[key]].code

    async def verify(self, key: str, data: bytes, mac: str) -> bool | None:
        """True when `mac` (hex) is the MAC of `data` under the key named `key`; None when the HSM
        could not tell (logged)."""
        try:
            return await self._hsm.verify_mac(self._keys[key], data, mac, key_type_code=self._type_code(key))
        except (HsmUnavailable, HsmError) as exc:
            _hsm_fault("M8", key, exc)
            return None

    async def seal(self, message: Message, dialect: Dialect, key: str) -> tuple[Message, bytes] | None:
        """`message` with its MAC under `key` in the field it belongs in, and its encoding in
        `dialect`; None when the HSM could not MAC it (logged). A message that does not encode
        raises MessageEncodeError, as encoding it would."""
        placeholder, field = with_zero_mac(message)
        payload = dialect.encode(placeholder)
        try:
            mac = await self._hsm.generate_mac(self._keys[key], covered(payload, dialect, field),
                                               key_type_code=self._type_code(key))
        except (HsmUnavailable, HsmError) as exc:
            _hsm_fault("M6", key, exc)
            return None
        placeholder.fields[field] = mac
        return placeholder, with_mac(payload, dialect, field, mac)

    async def answer(self, response: Message, dialect: Dialect, key: str) -> Message:
        """A terminal's answer with its MAC under `key`. One that cannot be MACed (the HSM failed;
        or it does not encode, which the listener then answers for) goes as it is, without a MAC:
        the terminal takes it as failed, and reverses what it must."""
        try:
            sealed = await self.seal(response, dialect, key)
        except MessageEncodeError:
            return response
        return response if sealed is None else sealed[0]

    async def check(self, message: Message, payload: bytes, dialect: Dialect, key: str) -> str | None:
        """Why `message` (decoded from `payload` in `dialect`) fails its MAC under `key`, naming the
        field and never a value; None when it verifies."""
        found = received_mac(message, payload, dialect)
        if isinstance(found, str):
            return found
        return mac_failure(found.field, await self.verify(key, found.data, found.mac))


def _hsm_fault(command: str, key: str, exc: HsmUnavailable | HsmError) -> None:
    if isinstance(exc, HsmError):
        logs.warning("hsm_error", command=command, code=exc.code, key=key)
    else:
        logs.warning("hsm_unavailable", command=command, key=key, reason=str(exc))
