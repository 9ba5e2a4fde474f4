"""The key store: named working keys in a TOML file, each encrypted under the LMK.

File layout (see docs/hsm.md):

    lmk_check_value = "16 hex"          # the LMK these keys were encrypted under
    [keys."zpk.bank_a"]
    type = "ZPK"                        # ZMK ZPK PVK TAK ZAK CVK TPK TMK
    key = "U<32 hex>"                   # scheme-prefixed, under the LMK variant of `type`
    kcv = "6 hex"                       # check value of the clear key

Loading checks the LMK check value and decrypts every key once to check parity and KCV, so a
wrong LMK or a damaged file fails at start-up with the file, the key and what was expected. The
clear keys are not kept: `clear_key` decrypts on demand, and only HSM code calls it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import attrs

from switch.errors import ConfigError
from switch.hsm.keys import Key
from switch.hsm.lmk import KeyType, Lmk


@attrs.frozen
class StoredKey:
    name: str
    key_type: KeyType
    encrypted: str
    kcv: str


@attrs.frozen(repr=False)
class Keystore:
    path: str
    lmk: Lmk
    entries: dict[str, StoredKey]

    def __repr__(self) -> str:
        return f"Keystore({self.path!r}, {len(self.entries)} keys)"

    @classmethod
    def load(cls, path: str | os.PathLike[str], lmk: Lmk) -> Keystore:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(path, "-", f"a readable key store ({type(exc).__name__})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, "-", f"valid TOML ({exc})") from None
        if data.get("lmk_check_value") != lmk.check_value():
            raise ConfigError(path, "lmk_check_value", "the check value of the LMK in use (wrong LMK?)")
        keys = data.get("keys")
        if not isinstance(keys, dict):
            raise ConfigError(path, "keys", "a table of named keys")
        entries = {name: _entry(path, lmk, name, table) for name, table in keys.items()}
        return cls(str(path), lmk, entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def _get(self, name: str) -> StoredKey:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(self.path, f"keys.{name}", "a key of that name") from None

    def encrypted(self, name: str) -> str:
        """The LMK-encrypted form, which is what the switch passes to the HSM client."""
        return self._get(name).encrypted

    def key_type(self, name: str) -> KeyType:
        return self._get(name).key_type

    def kcv(self, name: str) -> str:
        return self._get(name).kcv

    def clear_key(self, name: str) -> Key:
        """The clear key. HSM-internal: only code inside switch.hsm may call this."""
        entry = self._get(name)
        return self.lmk.decrypt_key(entry.key_type, entry.encrypted)


def _entry(path: str | os.PathLike[str], lmk: Lmk, name: str, table: object) -> StoredKey:
    where = f"keys.{name}"
    if not isinstance(table, dict):
        raise ConfigError(path, where, "a table with type, key and kcv")
    try:
        key_type = KeyType[str(table.get("type"))]
    except KeyError:
        raise ConfigError(path, f"{where}.type", f"one of {', '.join(t.name for t in KeyType)}") from None
    encrypted = table.get("key")
    try:
        clear = lmk.decrypt_key(key_type, str(encrypted))
    except ValueError as exc:
        raise ConfigError(path, f"{where}.key", f"a {key_type.name} key under this LMK ({exc})") from None
    if table.get("kcv") != clear.kcv():
        raise ConfigError(path, f"{where}.kcv", "the check value of the decrypted key")
    return StoredKey(name, key_type, str(encrypted), clear.kcv())


def render_entry(name: str, key_type: KeyType, encrypted: str, kcv: str) -> str:
    """One key as a TOML table, ready to append to a key store."""
    return f'[keys."{name}"]\ntype = "{key_type.name}"\nkey = "{encrypted}"\nkcv = "{kcv}"\n'
