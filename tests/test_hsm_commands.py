"""Host commands through the sans-IO dispatcher: layouts, response codes, error codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.hsm import cvv, keywrap, mac, pinblock, pinverify
from switch.hsm.codec import response_code
from switch.hsm.commands import Dispatcher
from switch.hsm.keys import Key
from switch.hsm.lmk import KeyType, Lmk

LMK = Lmk.from_hex("0123456789ABCDEFFEDCBA9876543210")
K = Key.tdes(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
K2 = Key.tdes(bytes.fromhex("89ABCDEF0123456776543210FEDCBA98"))
PAN = "4761739001010010"
ACCOUNT = PAN[-13:-1]


def under(key_type: KeyType, key: Key = K) -> str:
    return LMK.encrypt_key(key_type, key)


def run(command: str, header: bytes = b"HDR1") -> tuple[str, str, str]:
    """(response code, error code, data) for one command, checking the echoed header."""
    response = Dispatcher(LMK).handle(header + command.encode("ascii"))
    assert response.startswith(header)
    text = response[len(header):].decode("ascii")
    return text[:2], text[2:4], text[4:]


def test_response_codes_advance_the_second_letter():
    assert [response_code(c) for c in ("NC", "CA", "CY", "A0", "M8", "XZ")] == ["ND", "CB", "CZ", "A1", "M9", "XA"]


def test_nc_reports_lmk_check_value():
    assert run("NC") == ("ND", "00", "08D7B4FB629D0885CSWHSM-01")


def test_bu_checks_type_by_parity():
    assert run(f"BUFF1{under(KeyType.ZPK)};001") == ("BV", "00", "08D7B4")
    assert run(f"BUFF1{under(KeyType.ZPK)};002")[:2] == ("BV", "10")


def test_a0_and_fa_exchange_a_zpk_under_a_zmk():
    code, err, data = run(f"A01001U{under(KeyType.ZMK)}")
    assert (code, err) == ("A1", "00")
    under_lmk, under_zmk, kcv = data[:33], data[33:-6], data[-6:]
    assert under_zmk.startswith("X") and LMK.decrypt_key(KeyType.ZPK, under_lmk).kcv() == kcv
    assert run(f"FA{under(KeyType.ZMK)}{under_zmk}") == ("FB", "00", under_lmk + kcv)
    assert run(f"FA{under(KeyType.ZMK)}{keywrap.wrap(K, Key.tdes(bytes(16)))}")[1] == "11"


def test_a0_and_mi_exchange_a_zak_under_a_zmk():
    _, _, data = run(f"A01008U{under(KeyType.ZMK)}")
    under_lmk, under_zmk, kcv = data[:33], data[33:-6], data[-6:]
    assert LMK.decrypt_key(KeyType.ZAK, under_lmk).kcv() == kcv
    assert run(f"MI{under(KeyType.ZMK)}{under_zmk}") == ("MJ", "00", under_lmk + kcv)
    assert run(f"MI{under(KeyType.ZMK)}X1234")[1] == "15"


def test_a0_generates_aes_keys():
    code, err, data = run("A00001R2")
    assert (code, err) == ("A1", "00") and data.startswith("R2") and len(data) == 2 + 48 + 6


def test_ca_translates_and_changes_format():
    block = pinblock.encrypt_pin(K, 0, "1234", PAN).hex().upper()
    code, err, data = run(f"CA{under(KeyType.TPK)}{under(KeyType.ZPK, K2)}12{block}0147{ACCOUNT}")
    assert (code, err) == ("CB", "00") and data[:2] == "04" and data[-2:] == "47"
    assert pinblock.decrypt_pin(K2, 3, bytes.fromhex(data[2:-2]), PAN) == "1234"
    assert run(f"CA{under(KeyType.TPK)}{under(KeyType.ZPK, K2)}12{block}0105{ACCOUNT}")[1] == "23"
    assert run(f"CA{under(KeyType.TPK)}{under(KeyType.ZPK, K2)}03{block}0101{ACCOUNT}")[1] == "24"
    assert run(f"CA{under(KeyType.ZPK)}{under(KeyType.ZPK, K2)}12{block}0101{ACCOUNT}")[1] == "10"
    assert run(f"CA{under(KeyType.TPK)}{under(KeyType.TPK, K2)}12{block}0101{ACCOUNT}")[1] == "11"
    assert run(f"CA{under(KeyType.TPK)}{under(KeyType.ZPK, K2)}12{block}0101{'1' * 12}")[1] == "20"


def test_cc_translates_to_format_4_under_an_aes_zpk():
    aes = Key.aes(bytes(range(16)))
    block = pinblock.encrypt_pin(K, 0, "567890", PAN).hex().upper()
    code, err, data = run(f"CC{under(KeyType.ZPK)}{under(KeyType.ZPK, aes)}12{block}0148{len(PAN):02d}{PAN}")
    assert (code, err) == ("CD", "00")
    assert pinblock.decrypt_pin(aes, 4, bytes.fromhex(data[2:-2]), PAN) == "567890"


def test_cw_cy_cvv():
    value = cvv.cvv(K, PAN, "2812", "101")
    assert run(f"CW{under(KeyType.CVK)}{PAN};2812101") == ("CX", "00", value)
    assert run(f"CY{under(KeyType.CVK)}{value}{PAN};2812101") == ("CZ", "00", "")
    wrong = "000" if value != "000" else "001"
    assert run(f"CY{under(KeyType.CVK)}{wrong}{PAN};2812101") == ("CZ", "01", "")
    assert run(f"CY{under(KeyType.CVK)}{value}{PAN}2812101")[1] == "15"


def test_ba_de_da_ea_ibm_offset():
    validation12 = PAN[:11] + "N"
    code, err, pin_under_lmk = run(f"BA1234FFFFFFFF{ACCOUNT}")
    assert (code, err) == ("BB", "00") and "1234" not in pin_under_lmk
    code, err, offset = run(f"DE{under(KeyType.PVK, K2)}{pin_under_lmk}04{ACCOUNT}0123456789012345{validation12}")
    assert (code, err) == ("DF", "00") and offset.endswith("FFFFFFFF")
    expected = pinverify.ibm_offset(K2, "1234", PAN[:11] + ACCOUNT[-5:], "0123456789012345")
    assert offset[:4] == expected
    for command, key_type in (("DA", KeyType.TPK), ("EA", KeyType.ZPK)):
        for pin, err in (("1234", "00"), ("1243", "01")):
            block = pinblock.encrypt_pin(K, 0, pin, PAN).hex().upper()
            request = (f"{command}{under(key_type)}{under(KeyType.PVK, K2)}12{block}0104{ACCOUNT}"
                       f"0123456789012345{validation12}{offset}")
            assert run(request)[1] == err


def test_dc_ec_pvv():
    pvv = pinverify.visa_pvv(K2, PAN, 1, "4321")
    for command, key_type in (("DC", KeyType.TPK), ("EC", KeyType.ZPK)):
        for pin, err in (("4321", "00"), ("4322", "01")):
            block = pinblock.encrypt_pin(K, 1, pin, PAN).hex().upper()
            assert run(f"{command}{under(key_type)}{under(KeyType.PVK, K2)}{block}05{ACCOUNT}1{pvv}")[1] == err


def test_m6_m8_macs():
    data = b"0200 purchase".hex().upper()
    expected = mac.retail_mac(K, bytes.fromhex(data), 2).hex().upper()
    assert run(f"M601132008{under(KeyType.ZAK)}{len(data):04X}{data}") == ("M7", "00", expected)
    assert run(f"M601032008{under(KeyType.ZAK)}{len(data):04X}{data}")[2] == expected[:8]
    assert run(f"M801132008{under(KeyType.ZAK)}{len(data):04X}{data}{expected}")[:2] == ("M9", "00")
    assert run(f"M801132008{under(KeyType.ZAK)}{len(data):04X}{data}{'0' * 16}")[:2] == ("M9", "01")
    aes = Key.aes(bytes(range(16)))
    cmac = mac.generate(aes, b"abc", "cmac")[:8].hex().upper()
    assert run(f"M602161003{under(KeyType.TAK, aes)}0003abc") == ("M7", "00", cmac)
    zak = under(KeyType.ZAK)
    for bad in ("M6013", f"M611131008{zak}0002AB", f"M603131008{zak}0002AB", f"M601231008{zak}0002AB",
                f"M601131005{zak}0002AB", f"M601131008{zak}0003ABC", f"M601131008{zak}0002G0",
                f"M601131008{zak}00", f"M801131008{zak}0002AB{expected[:15]}"):
        assert run(bad)[1] == "15", bad


@pytest.mark.parametrize("frame, expected", [
    (b"HDR1XY", b"HDR1XZ68"),
    (b"HDR1", b"HDR1ZZ15"),
    (b"HD", b"HDZZ15"),
    (b"HDR1C\xff", b"HDR1ZZ15"),
    (b"HDR1CA", b"HDR1CB15"),
    (b"HDR1CAU" + b"G" * 32, b"HDR1CB15"),
    (b"HDR1NCextra", b"HDR1ND15"),
    (b"HDR1CW" + under(KeyType.CVK).encode() + b"4111;28", b"HDR1CX15"),
    (b"HDR1CW" + b"U" + b"0" * 32 + b"4111;2812101", b"HDR1CX10"),
    (b"HDR1M6999", b"HDR1M715"),
])
def test_malformed_commands_get_error_responses(frame, expected):
    assert Dispatcher(LMK).handle(frame) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_dispatcher_never_raises(frame):
    response = Dispatcher(LMK).handle(frame)
    assert response.startswith(frame[:4])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["CA", "CC", "CW", "CY", "DA", "EA", "DE", "DC", "EC", "M6", "M8", "A0", "FA", "MI", "BU", "BA"]),
       st.text("0123456789ABCDEFUTR;N", max_size=150))
def test_known_commands_with_garbage_never_raise(command, data):
    response = Dispatcher(LMK).handle(b"0000" + (command + data).encode())
    assert response[4:6].decode() == response_code(command)


def test_header_length_is_configurable():
    assert Dispatcher(LMK, header_length=0).handle(b"NC")[:4] == b"ND00"
    assert Dispatcher(LMK, header_length=8).handle(b"ABCDEFGHNC")[:12] == b"ABCDEFGHND00"
