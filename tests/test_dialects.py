"""Dialects: round trips, re-encoding between them, and decoding hostile bytes safely."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from switch.errors import ConfigError
from switch.wire.dialect import MessageDecodeError, load_dialect
from switch.wire.message import Message

DIALECTS = ["iso87-binary", "iso87-ascii", "pos-tpdu", "base24"]
PURCHASE = Message("0200", {
    "2": "4761730000000011", "3": "000000", "4": "000000002500", "7": "1122101010",
    "11": "000123", "14": "3012", "41": "T0000001", "49": "978", "52": "0123456789ABCDEF",
    "70": "301", "90": "020000012311221010100000100001000000000000",
})


@pytest.mark.parametrize("name", DIALECTS)
def test_round_trip(name):
    dialect = load_dialect(name)
    assert dialect.decode(dialect.encode(PURCHASE)) == PURCHASE


def test_default_profile_layout():
    """ASCII MTI, 8-byte binary bitmaps, ASCII data, binary PIN block (pyiso8583 specs.default)."""
    data = load_dialect("iso87-binary").encode(PURCHASE)
    assert data[:4] == b"0200"
    assert data[4] & 0x80  # secondary bitmap present (field 90)
    assert bytes.fromhex("0123456789ABCDEF") in data


def test_ascii_dialect_has_hex_bitmap_and_pin_block():
    data = load_dialect("iso87-ascii").encode(PURCHASE)
    assert data[4:20].decode().isalnum()
    assert b"0123456789ABCDEF" in data


def test_reencoding_between_dialects_keeps_every_field():
    ascii_dialect, binary = load_dialect("iso87-ascii"), load_dialect("iso87-binary")
    assert binary.decode(binary.encode(ascii_dialect.decode(ascii_dialect.encode(PURCHASE)))) == PURCHASE


def test_present_but_empty_secondary_bitmap_is_accepted():
    """npm iso_8583 always sends a secondary bitmap, even an empty one."""
    message = Message("0810", {"7": "1122101010", "11": "000001", "39": "00"})
    data = bytearray(load_dialect().encode(message))
    assert not data[4] & 0x80
    data[4] |= 0x80
    data[12:12] = bytes(8)  # empty secondary bitmap after the primary
    assert load_dialect().decode(bytes(data)) == message


def test_undecodable_message_keeps_readable_mti_and_stan():
    data = load_dialect().encode(Message("0200", {"11": "000042", "41": "T0000001", "49": "978"}))
    with pytest.raises(MessageDecodeError) as caught:
        load_dialect().decode(data[:-2])
    assert caught.value.mti == "0200"
    assert caught.value.echo == {"11": "000042", "41": "T0000001"}
    assert "field 49" in str(caught.value)


@pytest.mark.parametrize("field", ["11", "41"])
def test_the_field_that_fails_is_not_echoed(field):
    """pyiso8583 enters a field as "" before decoding it; that empty value must not become an echo."""
    data = bytearray(load_dialect().encode(Message("0200", {"11": "000042", "41": "T0000001", "49": "978"})))
    data[data.index({"11": b"000042", "41": b"T0000001"}[field])] = 0xFF  # not ASCII
    with pytest.raises(MessageDecodeError) as caught:
        load_dialect().decode(bytes(data))
    assert caught.value.field == field
    assert caught.value.echo == ({} if field == "11" else {"11": "000042"})


@given(st.binary(max_size=400))
def test_random_bytes_raise_only_our_error(data):
    for name in ("iso87-binary", "iso87-ascii"):
        try:
            load_dialect(name).decode(data)
        except MessageDecodeError:
            pass


def test_unknown_dialect_names_the_known_ones():
    with pytest.raises(ConfigError, match="known dialects: .*iso87-ascii"):
        load_dialect("nope")
