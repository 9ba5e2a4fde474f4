"""The compiled fast path agrees with pyiso8583 whenever it answers, for every dialect: on valid
messages, on messages with bad values, and on any bytes (mutated encodings and noise)."""

from __future__ import annotations

import iso8583
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.core.codes import RC
from switch.wire.dialect import DIALECTS_DIR, load_dialect
from switch.wire.fastcodec import LAYOUTS_KEPT, compile_spec

DIALECTS = sorted(path.stem for path in DIALECTS_DIR.glob("*.toml"))


def test_every_bundled_dialect_is_compiled():
    """ASCII, binary, packed BCD and EBCDIC data, ASCII, binary and BCD lengths: all of ours."""
    assert [name for name in DIALECTS if load_dialect(name).fast is None] == []


def reference_decode(spec, data: bytes):
    try:
        fields, _ = iso8583.decode(data, spec)
    except iso8583.DecodeError:
        return None
    mti = fields.pop("t")
    for key in ("p", "1", "h"):
        fields.pop(key, None)
    return mti, fields


def reference_encode(spec, mti: str, fields: dict) -> bytes | None:
    try:
        return bytes(iso8583.encode({**fields, "t": mti}, spec)[0])
    except (iso8583.EncodeError, KeyError, ValueError, TypeError, AttributeError):
        return None


@st.composite
def field_value(draw, field: dict) -> str:
    size = field["max_len"] if field["len_type"] == 0 and draw(st.booleans()) else draw(
        st.integers(0, field["max_len"] + 2))
    if field.get("len_count") == "nibbles":  # packed BCD: digits, now and then a pad or a letter
        value = draw(st.text("0123456789", min_size=size, max_size=size))
        return draw(st.sampled_from([value, value + "D", value[:-1] + "F" if value else "F", value.lower() + "a"]))
    if field["data_enc"] == "b":
        value = draw(st.binary(min_size=size, max_size=size)).hex()
        return draw(st.sampled_from([value.upper(), value, value + "0", value[:-1] + "G" if value else "Z"]))
    alphabet = st.characters(min_codepoint=32, max_codepoint=126) if draw(st.integers(0, 9)) else st.characters()
    return draw(st.text(alphabet, min_size=size, max_size=size))


@st.composite
def messages(draw, name: str):
    spec = load_dialect(name).spec
    numbers = [k for k in spec if k.isdigit() and int(k) not in (1, 65)]
    chosen = draw(st.lists(st.sampled_from(numbers), max_size=20, unique=True))
    fields = {key: draw(field_value(spec[key])) for key in chosen}
    mti = draw(st.one_of(st.sampled_from(["0200", "0210", "0400", "0800"]), st.text(max_size=5)))
    return mti, fields


@pytest.mark.parametrize("name", DIALECTS)
# 150 a dialect: with every shipped dialect compiled, that is still 1,500 messages a run.
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_encode_and_decode_agree_with_pyiso8583(name, data):
    dialect = load_dialect(name)
    assert dialect.fast is not None
    mti, fields = data.draw(messages(name))
    expected = reference_encode(dialect.spec, mti, fields)
    fast = dialect.fast.encode(mti, fields)
    if fast is not None:
        assert fast == expected
    if expected is None:
        return
    assert dialect.fast.decode(expected) == reference_decode(dialect.spec, expected)
    mutated = bytearray(expected)
    for _ in range(data.draw(st.integers(0, 3))):
        if mutated:
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    mutated = bytes(mutated)[:data.draw(st.integers(0, len(mutated)))] + data.draw(st.binary(max_size=3))
    fast_decoded = dialect.fast.decode(mutated)
    if fast_decoded is not None:
        assert fast_decoded == reference_decode(dialect.spec, mutated)


@pytest.mark.parametrize("name", DIALECTS)
@settings(max_examples=100, deadline=None)
@given(noise=st.binary(max_size=120))
def test_decoding_noise_agrees_with_pyiso8583(name, noise):
    dialect = load_dialect(name)
    fast = dialect.fast.decode(noise)
    if fast is not None:
        assert fast == reference_decode(dialect.spec, noise)


def test_layouts_are_kept_for_a_bounded_number_of_field_sets():
    """The encoder keeps each field set's bitmap and wire order (its keys as the message holds
    them) for the first LAYOUTS_KEPT sets only: a terminal choosing every combination of fields
    cannot grow it. Every message is still encoded as pyiso8583 encodes it, kept or not, and a
    kept layout serves new values."""
    dialect = load_dialect("iso87-ascii")
    codec = compile_spec(dialect.spec)
    assert codec is not None
    optional = ["3", "4", "7", "12", "13", "18", "22", "25", "32", "37", "41", "42", "49"]
    sets = [[key for bit, key in enumerate(optional) if mask >> bit & 1] for mask in range(LAYOUTS_KEPT + 40)]
    for round_ in range(2):
        for keys in sets:
            fields = {"11": f"{round_:06d}", **{key: field_text(dialect.spec[key], round_) for key in keys}}
            assert codec.encode("0200", fields) == reference_encode(dialect.spec, "0200", fields)
    assert len(codec._layouts) == LAYOUTS_KEPT


def test_text_enums_are_encoded_by_the_fast_path():
    """A response code is a str enum where the switch sets field 39 itself (declines, stand-in,
    0430s): encoded as its text by the fast path, as pyiso8583 encodes it, not left to pyiso8583."""
    fields = {"3": "000000", "11": "000123", "39": RC.DO_NOT_HONOUR, "41": "TERM0001"}
    encoded = 0
    for name in DIALECTS:
        dialect = load_dialect(name)
        as_text = dialect.fast.encode("0210", {**fields, "39": "05"})
        if as_text is None:  # not a 1987 message shape (the 1993 dialects' field 39 has 3 digits)
            continue
        assert dialect.fast.encode("0210", fields) == as_text == reference_encode(dialect.spec, "0210", fields)
        encoded += 1
    assert encoded >= 5


def field_text(field: dict, seed: int) -> str:
    """A value that fits `field` (ASCII digits: every bundled ASCII spec takes them)."""
    size = field["max_len"] if field["len_type"] == 0 else min(field["max_len"], 3 + seed)
    return str(seed) * size
