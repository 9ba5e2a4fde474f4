"""Differential properties against psec and pyemv: random keys, PANs and PINs."""

from __future__ import annotations

import psec
import pyemv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.hsm import cvv, mac, pinblock, pinverify
from switch.hsm.keys import Key

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

FAST = settings(max_examples=40, deadline=None)
tdes2 = st.binary(min_size=16, max_size=16).map(Key.tdes)
tdes = st.one_of(tdes2, st.binary(min_size=24, max_size=24).map(Key.tdes))
aes = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)).map(Key.aes)
pans = st.text("0123456789", min_size=13, max_size=19)
pins = st.text("0123456789", min_size=4, max_size=12)
digits = st.text("0123456789", min_size=1, max_size=1)


@FAST
@given(pin=pins, pan=pans)
def test_format_0_matches_psec(pin, pan):
    assert pinblock.encode(0, pin, pan) == psec.pinblock.encode_pinblock_iso_0(pin, pan)
    assert pinblock.decode(0, psec.pinblock.encode_pinblock_iso_0(pin, pan), pan) == pin


@FAST
@given(pin=pins, pan=pans)
def test_format_3_matches_psec(pin, pan):
    assert psec.pinblock.decode_pinblock_iso_3(pinblock.encode(3, pin, pan), pan) == pin
    assert pinblock.decode(3, psec.pinblock.encode_pinblock_iso_3(pin, pan), pan) == pin


@FAST
@given(key=aes, pin=pins, pan=st.text("0123456789", min_size=1, max_size=19))
def test_format_4_matches_psec(key, pin, pan):
    assert psec.pinblock.decipher_pinblock_iso_4(key.material, pinblock.encrypt_pin(key, 4, pin, pan), pan) == pin
    theirs = psec.pinblock.encipher_pinblock_iso_4(key.material, pin, pan)
    assert pinblock.decrypt_pin(key, 4, theirs, pan) == pin


@FAST
@given(src=tdes, dst=tdes, pin=pins, pan=pans, formats=st.sampled_from([(0, 3), (3, 0), (1, 0), (1, 3), (0, 0)]))
def test_translation_keeps_the_pin(src, dst, pin, pan, formats):
    src_fmt, dst_fmt = formats
    block = pinblock.encrypt_pin(src, src_fmt, pin, pan)
    length, out = pinblock.translate(src, src_fmt, dst, dst_fmt, block, pan)
    assert length == len(pin)
    assert pinblock.decrypt_pin(dst, dst_fmt, out, pan) == pin


@FAST
@given(pvk=tdes, pin=pins, pan=st.text("0123456789", min_size=16, max_size=16),
       dectab=st.text("0123456789", min_size=16, max_size=16), pad=st.sampled_from("0123456789ABCDEF"),
       start=st.integers(0, 4), length=st.integers(4, 12))
def test_ibm_offset_matches_psec(pvk, pin, pan, dectab, pad, start, length):
    validation = pan[start : start + length].ljust(16, pad)
    theirs = psec.pin.generate_ibm3624_offset(pvk.material, dectab, pin, pan, start, length, pad)
    assert pinverify.ibm_offset(pvk, pin, validation, dectab) == theirs
    assert pinverify.verify_ibm_offset(pvk, pin, theirs, validation, dectab, len(pin))


@FAST
@given(pvk=tdes, pin=pins, pan=pans, pvki=st.integers(0, 9))
def test_pvv_matches_psec(pvk, pin, pan, pvki):
    assert pinverify.visa_pvv(pvk, pan, pvki, pin) == psec.pin.generate_visa_pvv(pvk.material, str(pvki), pin[:4], pan)


@FAST
@given(cvk=tdes2, pan=st.text("0123456789", min_size=12, max_size=19),
       expiry=st.text("0123456789", min_size=4, max_size=4),
       service_code=st.text("0123456789", min_size=3, max_size=3))
def test_cvv_matches_psec(cvk, pan, expiry, service_code):
    assert cvv.cvv(cvk, pan, expiry, service_code) == psec.cvv.generate_cvv(cvk.material, pan, expiry, service_code)


@FAST
@given(key=tdes2, data=st.binary(min_size=1, max_size=64), padding=st.sampled_from([1, 2]))
def test_retail_mac_matches_psec_and_pyemv(key, data, padding):
    ours = mac.retail_mac(key, data, padding)
    k1, k2 = key.material[:8], key.material[8:]
    assert ours == psec.mac.generate_retail_mac(k1, k2, data, padding)
    assert ours == pyemv.mac.mac_iso9797_3(k1, k2, data, padding)
