"""The key store an issuer emulator's `[issuer]` section names (`keys`, `lmk_file`): shared by
its PIN check (emulators.issuer_pins) and its MACs (emulators.issuer_macs)."""

from __future__ import annotations

from pathlib import Path

from switch.hsm.client import InProcessHsm
from switch.hsm.keystore import Keystore
from switch.hsm.lmk import load_lmk
from switch.tomlfile import Table


def issuer_keys(section: Table, base: Path, names: dict[str, str]) -> tuple[InProcessHsm, dict[str, str]]:
    """An in-process HSM under the section's LMK, and the LMK-encrypted keys `names` asks for
    ({section key: key name}), each checked to be in the key store. Paths are relative to `base`
    (the issuer file's directory); without `lmk_file` the LMK comes from $CARDSWITCH_LMK."""
    keys = section.get("keys", str, None, "a key store path, relative to this file")
    lmk_file = section.get("lmk_file", str, None, "an LMK file path, relative to this file")
    if keys is None:
        raise section.error("keys", f"a key store path: {', '.join(names)} name keys in it")
    try:
        lmk = load_lmk(base / lmk_file if lmk_file else None)
    except (ValueError, OSError) as exc:
        raise section.error("lmk_file", f"an LMK file, or $CARDSWITCH_LMK ({exc})") from None
    keystore = Keystore.load(base / keys, lmk)
    for setting, name in names.items():
        if name not in keystore:
            raise section.error(setting, f"the name of a key in {base / keys}")
    return InProcessHsm(lmk), {setting: keystore.encrypted(name) for setting, name in names.items()}
