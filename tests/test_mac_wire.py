"""The MAC over a message, without sockets: which bytes it covers and where it goes
(switch.wire.macs), checked against the published X9.19 vector through the HSM's M6/M8, against
psec over whole messages, and by properties over random messages."""

from __future__ import annotations

import re

import psec
import pytest
from hypothesis import given, settings, strategies as st

from emulators.network import DEMO_KEYS
from emulators.terminal import Terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.hsm import mac
from switch.hsm.client import InProcessHsm
from switch.hsm.keys import Key, with_odd_parity
from switch.hsm.lmk import KeyType, Lmk
from switch.wire.dialect import MessageDecodeError, load_dialect
from switch.wire.macs import mac_field, received_mac, with_zero_mac
from switch.wire.message import Message

X919_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # ANSI X9.19's published example
LMK = Lmk.from_hex("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF")
BINARY, ASCII = load_dialect("iso87-binary"), load_dialect("iso87-ascii")
FAST = settings(max_examples=60, deadline=None)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # psec on 3DES

keys = st.binary(min_size=16, max_size=16).map(with_odd_parity)  # DES ignores parity bits
digits = st.text("0123456789", min_size=1, max_size=19)


@st.composite
def messages(draw) -> Message:
    """Requests with a random selection of fields, some from the secondary bitmap."""
    fields = {"3": draw(st.text("0123456789", min_size=6, max_size=6)),
              "4": f"{draw(st.integers(0, 10**12 - 1)):012d}",
              "11": f"{draw(st.integers(1, 999999)):06d}",
              "41": draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=8))}
    if draw(st.booleans()):
        fields["2"] = draw(digits.filter(lambda v: len(v) >= 12))
    if draw(st.booleans()):
        fields["43"] = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ ", min_size=40, max_size=40))
    if draw(st.booleans()):
        fields["90"] = "0200" + "0" * 38
    return Message(draw(st.sampled_from(["0100", "0200", "0400", "0800"])), fields)


def sealed(message: Message, key: bytes, dialect=BINARY) -> bytes:
    """The message as a terminal holding `key` sends it (emulators.terminal)."""
    return Terminal(None, dialect, "T0000001", "M1", 1.0, b"", mac_key=key.hex()).encode(message)


def verifies(payload: bytes, key: bytes, dialect=BINARY) -> bool:
    try:
        message = dialect.decode(payload)
    except MessageDecodeError:
        return False
    found = received_mac(message, payload, dialect)
    return not isinstance(found, str) and mac.verify(Key.tdes(key), found.data, bytes.fromhex(found.mac))


async def test_the_published_x9_19_vector_through_the_hsm_host_commands():
    hsm, tak = InProcessHsm(LMK), LMK.encrypt_key(KeyType.TAK, Key.tdes(X919_KEY))
    data = b"Now is the time for all "
    assert await hsm.generate_mac(tak, data, key_type_code="003") == "A1C72E74EA3FA9B6"
    assert await hsm.verify_mac(tak, data, "A1C72E74EA3FA9B6", key_type_code="003")
    assert not await hsm.verify_mac(tak, data[:-1] + b"!", "A1C72E74EA3FA9B6", key_type_code="003")


@FAST
@given(messages(), keys)
def test_the_mac_over_a_message_matches_psec(message, key):
    """psec's retail MAC over everything before the last 8 bytes is those 8 bytes, and the MAC
    field's bit is set in the bitmap the MAC covers."""
    payload = sealed(message, key)
    assert payload[-8:] == psec.mac.generate_retail_mac(key[:8], key[8:], payload[:-8], 1)
    field = int(mac_field(message.fields))
    bitmap = payload[4:20] if field == 128 else payload[4:12]
    assert bitmap[(field - 1) // 8] & (0x80 >> ((field - 1) % 8))


@FAST
@given(messages(), keys)
def test_in_the_ascii_dialect_the_mac_is_16_hex_characters_over_the_rest(message, key):
    payload = sealed(message, key, ASCII)
    assert payload[-16:] == psec.mac.generate_retail_mac(key[:8], key[8:], payload[:-16], 1).hex().upper().encode()
    assert verifies(payload, key, ASCII)


@FAST
@given(messages(), keys, st.data())
def test_round_trip_and_any_single_byte_changed_fails(message, key, data):
    payload = sealed(message, key)
    assert verifies(payload, key)
    position = data.draw(st.integers(0, len(payload) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != payload[position]))
    assert not verifies(payload[:position] + bytes([value]) + payload[position + 1:], key)


@FAST
@given(messages(), keys, keys)
def test_another_key_fails(message, key, other):
    assert key == other or not verifies(sealed(message, key), other)


def test_the_mac_field_is_128_with_a_secondary_bitmap_and_64_without():
    assert mac_field({"3": "000000", "41": "T1"}) == "64"
    assert mac_field({"3": "000000", "90": "0" * 42, "64": "00"}) == "128"
    placeholder, field = with_zero_mac(Message("0400", {"3": "000000", "64": "AB" * 8, "90": "0" * 42}))
    assert field == "128" and "64" not in placeholder.fields and placeholder.fields["128"] == "0" * 16


@pytest.mark.parametrize("fields, reason", [
    ({"3": "000000"}, "field 64: MAC missing"),
    ({"3": "000000", "90": "0" * 42}, "field 128: MAC missing"),
    ({"3": "000000", "64": "00" * 8, "90": "0" * 42}, "field 64: MAC before fields of the secondary bitmap"),
])
def test_a_missing_or_misplaced_mac_is_named_without_its_value(fields, reason):
    message = Message("0200", fields)
    found = received_mac(message, BINARY.encode(message), BINARY)
    assert isinstance(found, str) and found.startswith(reason)


def test_a_mac_terminal_needs_a_tak_and_a_dialect_that_carries_macs(tmp_path):
    base = ('[hsm]\nkeys = "{keys}"\n[[listeners]]\nport = 0\n{dialect}\n[[listeners.terminals]]\ntid = "T1"\n'
            "mac = true\n{tak}")
    cases = [("", "", "listeners[0].terminals[0].tak: a value (the name of a TAK key in the key store)"),
             ('tak = "tpk.demo"', "", "listeners[0].terminals[0].tak: the name of a TAK key"),
             ('tak = "tak.demo"', f'dialect = "{tmp_path / "variable.toml"}"', "listeners[0].terminals[0].mac: "
              "a dialect that carries MACs")]
    (tmp_path / "variable.toml").write_text(
        'extends = "iso87-binary"\n[fields]\n64 = { data_enc = "b", len_enc = "ascii", len_type = 2, max_len = 8 }\n')
    for tak, dialect, expected in cases:
        path = tmp_path / "switch.toml"
        path.write_text(base.format(keys=DEMO_KEYS, dialect=dialect, tak=tak))
        with pytest.raises(ConfigError, match=re.escape(expected)):
            load_config(path)
