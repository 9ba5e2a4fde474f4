"""Field 48's layouts (plain TLV, a category character before it): reading, the dialect setting,
and the CVV2 hidden wherever field 48 is shown or passed on (masking, advices, sanitised
captures, `decode`)."""

from __future__ import annotations

import string
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from switch.capture.sanitize import Sanitizer
from switch.core.messages import stand_in_advice
from switch.errors import ConfigError
from switch.wire.dialect import load_dialect
from switch.wire.field48 import Field48, Layout, read, without_tag
from switch.wire.masking import mask_field48, masked_value
from switch.wire.message import Message

CVV2 = "042"
# Reads as plain TLV (tag 00, ten characters) and as category TLV ("0", then tags 01 and 92):
# the two readings disagree on where the CVV2 is.
BOTH_WAYS = "00102009203" + "123"


def test_each_layout_reads_its_own_form():
    assert Field48.parse("0103abc9203042", Layout.PLAIN) == Field48("", (("01", "abc"), ("92", CVV2)))
    assert Field48.parse("R0103abc9203042", Layout.CATEGORY) == Field48("R", (("01", "abc"), ("92", CVV2)))
    assert Field48.parse("R", Layout.CATEGORY) == Field48("R", ())
    assert Field48.parse("", Layout.PLAIN) == Field48("", ())


@pytest.mark.parametrize("value, layout", [
    ("R9203042", Layout.PLAIN),  # a category character where a tag should be
    ("9203042", Layout.CATEGORY),  # "9" taken as the category: tag 20 of 30 characters
    ("", Layout.CATEGORY),  # no category character
    ("-9203042", Layout.CATEGORY),  # not a letter or digit
    ("920304", Layout.PLAIN),  # shorter than its length says
    ("9²03042", Layout.PLAIN),  # not ASCII digits (str.isdigit takes '²')
    ("GARBAGE", Layout.PLAIN),
])
def test_what_is_not_the_layouts_tlv_does_not_read(value, layout):
    assert Field48.parse(value, layout) is None


def test_without_a_layout_the_one_it_reads_in_is_taken_and_two_readings_are_none():
    assert read("9203042") == Field48("", (("92", CVV2),))
    assert read("R9203042") == Field48("R", (("92", CVV2),))
    assert read("GARBAGE") is None
    assert read(BOTH_WAYS) is None
    assert mask_field48(BOTH_WAYS) == "*" * len(BOTH_WAYS)  # neither reading is trusted to show


# -- any subelements, in both layouts ------------------------------------------------------

TAGS = st.text(string.digits, min_size=2, max_size=2)
VALUES = st.text(string.printable, max_size=99)
SUBELEMENTS = st.lists(st.tuples(st.one_of(TAGS, st.just("92")), VALUES), max_size=6).map(tuple)
FIELD48 = st.one_of(
    st.builds(Field48, st.just(""), SUBELEMENTS).map(lambda f: (Layout.PLAIN, f)),
    st.builds(Field48, st.sampled_from(string.ascii_letters + string.digits), SUBELEMENTS)
    .map(lambda f: (Layout.CATEGORY, f)))


@given(FIELD48)
def test_an_encoded_field_48_reads_back_and_its_masked_form_never_holds_the_cvv2(example):
    layout, field48 = example
    encoded = field48.encode()
    assert Field48.parse(encoded, layout) == field48
    assert read(encoded) in (field48, None)  # without the layout: the same, or not at all
    masked = mask_field48(encoded, layout)
    shown = Field48.parse(masked, layout)
    assert shown is not None and len(masked) == len(encoded)
    # Everything but the CVV2 is shown as it was; the CVV2 only as its length in '*'.
    assert shown.without("92") == field48.without("92")
    hidden = shown.values("92")
    assert len(hidden) == len(field48.values("92")) and all(set(value) <= {"*"} for value in hidden)
    # Without the layout: the same, or hidden whole where the value also reads the other way.
    assert mask_field48(encoded) in (masked, "*" * len(encoded))
    # What an advice or a sanitised capture keeps: the rest, category character included.
    assert without_tag(encoded, "92", layout) == field48.without("92").encode()


# -- the dialect setting ---------------------------------------------------------------------

def test_the_layout_is_a_dialect_setting_inherited_by_extends(category_dialect, tmp_path):
    assert load_dialect().field48 is Layout.PLAIN
    assert load_dialect(str(category_dialect)).field48 is Layout.CATEGORY
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{category_dialect}"\n')
    assert load_dialect(str(child)).field48 is Layout.CATEGORY
    plain_again = tmp_path / "plain.toml"
    plain_again.write_text(f'extends = "{category_dialect}"\n[field48]\nlayout = "plain"\n')
    assert load_dialect(str(plain_again)).field48 is Layout.PLAIN


@pytest.mark.parametrize("text, key", [
    ('[field48]\nlayout = "mastercard"\n', "field48.layout"),
    ("[field48]\nlayout = 1\n", "field48.layout"),
    ('[field48]\nlayout = "plain"\ncategory = "R"\n', "field48"),
    ('field48 = "category"\n', "field48"),
])
def test_a_bad_layout_is_a_one_line_error_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text('extends = "iso87-binary"\n' + text)
    with pytest.raises(ConfigError) as caught:
        load_dialect(str(path))
    assert caught.value.key == key and caught.value.file == str(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


# -- wherever field 48 is shown or passed on -------------------------------------------------

def test_masking_hides_the_cvv2_in_either_layout_and_what_does_not_read_whole():
    assert masked_value("48", "R0103abc9203042", Layout.CATEGORY) == "R0103abc9203***"
    assert masked_value("48", "R0103abc9203042", Layout.PLAIN) == "*" * 15
    assert masked_value("48", "0103abc9203042", Layout.CATEGORY) == "*" * 14
    # A log line knows no dialect: the one layout the value reads in.
    assert repr(Message("0200", {"48": "R0103abc9203042"})) == "Message({'mti': '0200', '48': 'R0103abc9203***'})"


@pytest.mark.parametrize("value, kept", [
    ("R0103abc9203042", "R0103abc"),
    ("R9203042", "R"),  # the category character stays on its own
    ("0103abc9203042", "0103abc"),
    ("9203042", None),  # nothing left
    ("GARBAGE9203042", None),  # does not read: a CVV2 could hide in it
    (BOTH_WAYS, None),
])
def test_advices_carry_field_48_without_the_cvv2(value, kept):
    forwarded = Message("0200", {"2": "4761730000000011", "3": "000000", "4": "000000000100", "11": "000001",
                                 "7": "1122101010", "41": "T0000001", "49": "978", "48": value})
    assert stand_in_advice(forwarded, "A1B2C3").get("48") == kept


def test_a_sanitised_capture_keeps_the_category_and_drops_the_cvv2(category_dialect):
    dialect = load_dialect(str(category_dialect))
    frame = dialect.frame(Message("0200", {"11": "000001", "48": "R0103abc9203042"}))
    clean = dialect.decode(Sanitizer(b"key").frame(dialect, frame)[2:])
    assert clean["48"] == "R0103abc"
    plain = load_dialect()  # the same frame, read as a plain-layout listener's: dropped whole
    assert "48" not in plain.decode(Sanitizer(b"key").frame(plain, frame)[2:])


def test_decode_masks_field_48_in_the_dialects_layout(category_dialect):
    frame = load_dialect().frame(Message("0200", {"11": "000001", "48": "R0103abc9203042"})).hex()

    def field48_shown(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "switch.cli", "decode", frame, *args],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "9203042" not in result.stdout
        return next(line for line in result.stdout.splitlines() if line.strip().startswith("48 ")).split()[-1]

    assert field48_shown("--dialect", str(category_dialect)) == "R0103abc9203***"
    assert field48_shown() == "*" * 15  # not plain TLV


def test_a_card_number_in_another_subelement_is_masked_too():
    value = "0116" + "4761730000000011" + "9203123"
    assert mask_field48(value) == "0116476173******0011" + "9203***"
