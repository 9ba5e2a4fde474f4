"""Published vectors for each HSM primitive (psec/pyemv docs, ANSI X9.19, RFC 4493, ISO 9564)."""

from __future__ import annotations

import pytest

from switch.hsm import cvv, mac, pinblock, pinverify
from switch.hsm.keys import Key, key_check_value, odd_parity, with_odd_parity

K = Key.tdes(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
AES_RFC4493 = Key.aes(bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"))


def test_tdes_kcv():
    assert K.kcv() == "08D7B4"
    assert key_check_value(K, 16) == "08D7B4FB629D0885"


def test_aes_kcv_is_cmac_of_zero_block():
    assert AES_RFC4493.kcv() == mac.generate(AES_RFC4493, bytes(16), "cmac").hex().upper()[:6]


def test_parity():
    assert odd_parity(K.material)
    assert not odd_parity(bytes.fromhex("1A2B3C4D5F0A1B2C4D5F6A7B8C9D0F1A"))
    assert with_odd_parity(bytes.fromhex("1A2B3C4D5F0A1B2C4D5F6A7B8C9D0F1A")).hex().upper() == (
        "1A2A3D4C5E0B1A2C4C5E6B7A8C9D0E1A"
    )


def test_pinblock_format_0():
    assert pinblock.encode(0, "1234", "5544332211009966").hex().upper() == "041277CDDEEFF669"
    assert pinblock.encode(0, "1234", "4111111111111111").hex().upper() == "041225EEEEEEEEEE"
    assert pinblock.decode(0, bytes.fromhex("041277CDDEEFF669"), "5544332211009966") == "1234"


def test_pinblock_format_1_and_3_decode():
    assert pinblock.decode(3, bytes.fromhex("341277EEEFCCB43C"), "5544332211009966") == "1234"
    block = pinblock.encode(1, "123456", "5544332211009966")
    assert block.hex().upper().startswith("16123456")
    assert pinblock.decode(1, block, "5544332211009966") == "123456"


def test_pinblock_format_4():
    assert pinblock.encode(4, "1234", "1234567890123456").hex().upper()[:16] == "441234AAAAAAAAAA"
    assert pinblock.pan_field_iso4("112233445566778899").hex().upper() == "61122334455667788990000000000000"
    key = Key.aes(bytes.fromhex("00112233445566778899AABBCCDDEEFF"))
    block = bytes.fromhex("7CDF645C86CAF763AE34637A66997534")
    assert pinblock.decrypt_pin(key, 4, block, "1234567890123456") == "1234"


@pytest.mark.parametrize("fmt", [0, 1, 3])
def test_pin_round_trip_under_tdes(fmt):
    block = pinblock.encrypt_pin(K, fmt, "987654", "4761739001010010")
    assert pinblock.decrypt_pin(K, fmt, block, "4761739001010010") == "987654"


def test_bad_blocks_are_rejected_without_echoing_data():
    with pytest.raises(pinblock.PinBlockError) as info:
        pinblock.decode(0, bytes.fromhex("041277CDDEEFF669"), "5544332211009976")
    assert "1234" not in str(info.value) and "5544" not in str(info.value)
    with pytest.raises(pinblock.PinFormatError):
        pinblock.encrypt_pin(K, 4, "1234", "4111111111111111")
    with pytest.raises(pinblock.PinFormatError):
        pinblock.check_translation(0, 1)
    pinblock.check_translation(1, 0)


def test_ibm_3624_offset():
    assert pinverify.ibm_offset(K, "4524", "1122334455667788", "1234567890123456") == "0000"
    assert pinverify.verify_ibm_offset(K, "4524", "0000FFFFFFFF", "1122334455667788", "1234567890123456", 4)
    assert not pinverify.verify_ibm_offset(K, "4525", "0000", "1122334455667788", "1234567890123456", 4)


def test_visa_pvv():
    assert pinverify.visa_pvv(K, "1122334455667788", 3, "4524") == "4021"
    assert pinverify.verify_pvv(K, "1122334455667788", 3, "4524", "4021")


def test_visa_cvv():
    assert cvv.cvv(K, "1234567890123456", "9912", "220") == "170"
    assert cvv.verify_cvv(K, "1234567890123456", "9912", "220", "170")
    assert not cvv.verify_cvv(K, "1234567890123456", "9912", "220", "171")


def test_retail_mac_x9_19():
    # ANSI X9.19 example: "Now is the time for all " under 0123456789ABCDEF / FEDCBA9876543210.
    assert mac.retail_mac(K, b"Now is the time for all ", 1).hex().upper() == "A1C72E74EA3FA9B6"
    # With K1 = K2 the retail MAC collapses to the X9.9 CBC-MAC example.
    same = Key.tdes(bytes.fromhex("0123456789ABCDEF") * 2)
    assert mac.retail_mac(same, b"Now is the time for all ", 1).hex().upper() == "70A30640CC76DD8B"
    assert mac.retail_mac(K, bytes.fromhex("1234567890ABCDEF"), 2).hex().upper() == "912476C111DB4238"


def test_aes_cmac_rfc4493():
    assert mac.generate(AES_RFC4493, b"", "cmac").hex() == "bb1d6929e95937287fa37d129b756746"
    message = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert mac.generate(AES_RFC4493, message, "cmac").hex() == "070a16b46b4d4144f79bdd9dd04a287c"
    assert mac.verify(AES_RFC4493, message, bytes.fromhex("070a16b4"), "cmac")


def test_padding_methods():
    assert mac.pad(bytes.fromhex("1234"), 1).hex().upper() == "1234000000000000"
    assert mac.pad(bytes.fromhex("1234"), 2).hex().upper() == "1234800000000000"
    assert mac.pad(b"", 1) == bytes(8)
    assert mac.pad(bytes(8), 2) == bytes(8) + b"\x80" + bytes(7)


def test_key_repr_hides_material():
    for key in (K, AES_RFC4493):
        text = repr(key) + str(key)
        assert key.material.hex().upper() not in text.upper()
        assert key.material.hex().upper()[:8] not in text.upper()
    assert repr(K) == "Key(tdes-128, kcv=08D7B4)"
