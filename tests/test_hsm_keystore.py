"""LMK loading, the key store file and the demo keys, and that clear keys never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.errors import ConfigError
from switch.hsm import pinblock, pinverify, validation
from switch.hsm.keys import Key
from switch.hsm.keystore import Keystore, render_entry
from switch.hsm.lmk import LMK_ENV, KeyParityError, KeyType, Lmk, load_lmk

DEMO = Path(__file__).resolve().parent.parent / "specs" / "demo"
LMK_HEX = "0123456789ABCDEFFEDCBA9876543210"


@pytest.fixture
def demo_store() -> Keystore:
    return Keystore.load(DEMO / "keys.toml", load_lmk(DEMO / "lmk-insecure.txt"))


def test_lmk_from_env_and_file(tmp_path):
    assert load_lmk(environ={LMK_ENV: LMK_HEX}).check_value() == "08D7B4FB629D0885"
    path = tmp_path / "lmk.txt"
    path.write_text(f"# comment\n{LMK_HEX}\n")
    assert load_lmk(path, environ={}).check_value() == "08D7B4FB629D0885"
    with pytest.raises(ValueError, match=LMK_ENV):
        load_lmk(environ={})
    with pytest.raises(ValueError) as info:
        load_lmk(environ={LMK_ENV: LMK_HEX[:-2] + "ZZ"})
    assert LMK_HEX[:10] not in str(info.value)


def test_demo_lmk_is_marked_insecure():
    assert "INSECURE" in (DEMO / "lmk-insecure.txt").read_text()


def test_key_variants_separate_types_and_detect_parity():
    lmk = Lmk.from_hex(LMK_HEX)
    key = Key.tdes(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    as_zpk = lmk.encrypt_key(KeyType.ZPK, key)
    assert as_zpk.startswith("U") and len(as_zpk) == 33
    assert lmk.encrypt_key(KeyType.TPK, key) != as_zpk
    assert lmk.decrypt_key(KeyType.ZPK, as_zpk) == key
    with pytest.raises(KeyParityError):
        lmk.decrypt_key(KeyType.PVK, as_zpk)
    swapped = "U" + as_zpk[17:] + as_zpk[1:17]
    with pytest.raises(KeyParityError):
        lmk.decrypt_key(KeyType.ZPK, swapped)
    aes = Key.aes(bytes(range(32)))
    assert lmk.decrypt_key(KeyType.ZPK, lmk.encrypt_key(KeyType.ZPK, aes)) == aes


def test_demo_store_has_the_documented_keys(demo_store):
    names = set(demo_store.names())
    assert {"tpk.demo", "tak.demo"} <= names
    for bank in ("bank_a", "bank_b", "bank_c"):
        assert {f"zpk.{bank}", f"pvk.{bank}", f"cvk.{bank}", f"zak.{bank}", f"zmk.{bank}"} <= names
    assert "tpk.demo" in demo_store and "tpk.nope" not in demo_store
    assert demo_store.key_type("tpk.demo") is KeyType.TPK
    assert demo_store.clear_key("zpk.bank_a").kcv() == demo_store.kcv("zpk.bank_a")


def test_wrong_lmk_and_tampering_fail_with_file_and_key(tmp_path, demo_store):
    with pytest.raises(ConfigError, match="lmk_check_value"):
        Keystore.load(DEMO / "keys.toml", Lmk.from_hex(LMK_HEX))
    text = (DEMO / "keys.toml").read_text()
    entry = demo_store.entries["zpk.bank_b"]
    bad = tmp_path / "keys.toml"
    bad.write_text(text.replace(entry.encrypted, entry.encrypted[:-2] + ("00" if entry.encrypted[-2:] != "00" else "11")))
    with pytest.raises(ConfigError) as info:
        Keystore.load(bad, demo_store.lmk)
    assert "keys.zpk.bank_b" in str(info.value) and str(bad) in str(info.value)
    bad.write_text(text.replace('type = "ZPK"', 'type = "NOPE"', 1))
    with pytest.raises(ConfigError, match="type"):
        Keystore.load(bad, demo_store.lmk)
    with pytest.raises(ConfigError, match="keys.nope"):
        demo_store.encrypted("nope")


def test_render_entry_round_trips(tmp_path):
    lmk = Lmk.from_hex(LMK_HEX)
    key = Key.tdes(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    path = tmp_path / "keys.toml"
    path.write_text(f'lmk_check_value = "{lmk.check_value()}"\n'
                    + render_entry("zpk.x", KeyType.ZPK, lmk.encrypt_key(KeyType.ZPK, key), key.kcv()))
    assert Keystore.load(path, lmk).clear_key("zpk.x") == key


def test_demo_values_and_terminal_pin_block(demo_store):
    pan, pin = "4761739001010010", "1234"
    values = validation.demo_values(demo_store, pan, "2812", "101", pin, pvk="pvk.bank_a", cvk="cvk.bank_a")
    assert set(values) >= {"pvv", "ibm_offset", "cvv", "cvv2", "icvv", "pvki", "validation_data", "dectab"}
    assert values["cvv"].isdigit() and len(values["cvv2"]) == 3 and len(values["pvv"]) == 4
    assert pin not in {v for v in values.values() if isinstance(v, str)}
    block = validation.encrypt_pin_block(demo_store, "tpk.demo", pin, pan)
    tpk = demo_store.clear_key("tpk.demo")
    assert pinblock.decrypt_pin(tpk, 0, bytes.fromhex(block), pan) == pin
    pvk = demo_store.clear_key("pvk.bank_a")
    assert pinverify.verify_pvv(pvk, pan, values["pvki"], pin, values["pvv"])


def test_no_clear_key_in_reprs(demo_store):
    clear = [demo_store.clear_key(name).material.hex().upper() for name in demo_store.names()]
    lmk_clear = demo_store.lmk.key.material.hex().upper()
    shown = " ".join([repr(demo_store), str(demo_store.lmk), repr(demo_store.lmk),
                      *(repr(demo_store.clear_key(n)) for n in demo_store.names()),
                      *(repr(e) for e in demo_store.entries.values())]).upper()
    for secret in [*clear, lmk_clear]:
        assert secret[:12] not in shown
