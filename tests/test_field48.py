"""Field 48's layouts (plain TLV, a category character before it): reading, and the dialect
setting."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, strategies as st

from switch.errors import ConfigError
from switch.wire.dialect import load_dialect
from switch.wire.field48 import Field48, Layout, read, without_tag

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


# -- any subelements, in both layouts ------------------------------------------------------

TAGS = st.text(string.digits, min_size=2, max_size=2)
VALUES = st.text(string.printable, max_size=99)
SUBELEMENTS = st.lists(st.tuples(st.one_of(TAGS, st.just("92")), VALUES), max_size=6).map(tuple)
FIELD48 = st.one_of(
    st.builds(Field48, st.just(""), SUBELEMENTS).map(lambda f: (Layout.PLAIN, f)),
    st.builds(Field48, st.sampled_from(string.ascii_letters + string.digits), SUBELEMENTS)
    .map(lambda f: (Layout.CATEGORY, f)))


@given(FIELD48)
def test_an_encoded_field_48_reads_back(example):
    layout, field48 = example
    encoded = field48.encode()
    assert Field48.parse(encoded, layout) == field48
    assert read(encoded) in (field48, None)  # without the layout: the same, or not at all
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
