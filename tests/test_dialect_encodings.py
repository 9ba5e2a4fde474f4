"""Dialects beyond ASCII: packed BCD numerics and lengths (iso87-bcd, jPOS ISO87BPackager's
layout) and EBCDIC (iso87-ebcdic), read and written through pyiso8583; a message reads the same
in every dialect and re-encodes between any two."""

from __future__ import annotations


import pytest
from hypothesis import given, settings, strategies as st

from conftest import make_bank, serve_switch, start_issuer, write_config
from processes import cardswitch, demo_serving
from emulators.terminal import open_terminal
from switch.errors import ConfigError
from switch.core.messages import replacement_amount
from switch.wire.dialect import DIALECTS_DIR, MessageDecodeError, load_dialect
from switch.wire.message import Message
from tools.load.processes import free_ports, wait_for_port

# Every ISO 8583:1987 dialect shipped (a 1993 one maps fields on the way: tests/test_iso93.py).
DIALECTS = tuple(sorted(path.stem for path in DIALECTS_DIR.glob("*.toml") if load_dialect(path.stem).iso == 1987))
APPROVE, EXPIRY = "4761730000000011", "3012"


def digits(low: int, high: int | None = None):
    return st.text(alphabet="0123456789", min_size=low, max_size=high if high is not None else low)


messages = st.builds(
    lambda mti, fields: Message(mti, {k: v for k, v in fields.items() if v is not None}),
    st.sampled_from(["0100", "0200", "0400", "0800"]),
    st.fixed_dictionaries({
        "2": digits(12, 19), "3": digits(6), "4": digits(12), "7": digits(10), "11": digits(6),
        "14": st.one_of(st.none(), digits(4)), "19": st.one_of(st.none(), digits(3)),
        "35": st.one_of(st.none(), st.builds(lambda pan, rest: f"{pan}={rest}", digits(12, 19), digits(7, 17))),
        "37": st.one_of(st.none(), st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=12)),
        "41": st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=8),
        "43": st.one_of(st.none(), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ /-.", min_size=40, max_size=40)),
        "49": digits(3), "55": st.one_of(st.none(), st.binary(min_size=1, max_size=40).map(lambda b: b.hex().upper())),
    }))


@settings(max_examples=60)
@given(messages, st.sampled_from(DIALECTS), st.sampled_from(DIALECTS))
def test_a_message_reads_the_same_in_every_dialect_and_re_encodes_between_any_two(message, first, second):
    one, other = load_dialect(first), load_dialect(second)
    assert one.decode(one.encode(message)) == message
    assert other.decode(other.encode(one.decode(one.encode(message)))) == message


def test_bcd_and_ebcdic_bytes_are_as_their_packagers_lay_them_out():
    message = Message("0200", {"2": "476173000000001", "3": "000000", "4": "000000001234", "7": "1201120000",
                               "11": "000001", "41": "T0000001", "49": "978"})
    bcd = load_dialect("iso87-bcd").encode(message)
    assert bcd[:2] == b"\x02\x00"  # the MTI, two BCD bytes
    pan_at = 2 + 8  # after the primary bitmap
    assert bcd[pan_at:pan_at + 9] == bytes.fromhex("15" + "0476173000000001")  # BCD length 15, padded left
    assert bcd.endswith(b"T0000001" + bytes.fromhex("0978"))  # 41 in ASCII, 49 in BCD with a leading 0
    ebcdic = load_dialect("iso87-ebcdic").encode(message)
    assert ebcdic[:4] == "0200".encode("cp500") and "T0000001".encode("cp500") in ebcdic
    track2 = load_dialect("iso87-bcd").encode(Message("0200", {**message.fields, "35": "4761730000000011=30122011"}))
    assert bytes.fromhex("25" + "4761730000000011D30122011F") in track2  # 25 digits, D for =, F pad


def test_a_dialect_with_an_unknown_encoding_is_one_line_naming_the_key(tmp_path):
    path = tmp_path / "odd.toml"
    path.write_text('name = "odd"\nextends = "iso87-binary"\n[fields]\n'
                    '4 = { data_enc = "ebcdic", len_enc = "ascii", len_type = 0, max_len = 12 }\n')
    with pytest.raises(ConfigError, match=r'fields.4.data_enc: one of "ascii", "b", "cp037", "cp500"'):
        load_dialect(str(path))


@pytest.mark.parametrize("dialect", ["iso87-bcd", "iso87-ebcdic", "iso87-bcd-tpdu"])
async def test_a_terminal_speaking_bcd_or_ebcdic_is_served(nursery, tmp_path, dialect):
    bank = make_bank({"pan": APPROVE})
    issuer_port = await start_issuer(nursery, bank)
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0, "dialect": dialect}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    async with open_terminal("127.0.0.1", ports["terminals"], dialect=load_dialect(dialect)) as terminal:
        answer = await terminal.purchase(pan=APPROVE, amount=1234, expiry=EXPIRY)
    assert (answer.mti, answer["39"], answer["4"]) == ("0210", "00", "000000001234")
    assert bank.accounts[APPROVE].balance == 100000 - 1234


def test_the_demo_serves_terminals_in_a_dialect_of_their_choice(tmp_path):
    port = free_ports(2)  # the demo listens on PORT and PORT+1
    with demo_serving("--dialect", "iso87-bcd-tpdu", "--port", str(port), "--data-dir", str(tmp_path / "data")) as demo:
        wait_for_port(port, demo.process, "the demo")
        bought = cardswitch("terminal", "purchase", "--target", f"127.0.0.1:{port}", "--dialect", "iso87-bcd-tpdu",
                            "--pan", APPROVE, "--expiry", EXPIRY, "--amount", "12.34", "--json")
    assert '"39": "00"' in bought.stdout, bought.stdout + bought.stderr
    assert "dialect iso87-bcd-tpdu" in demo.out
    refused = cardswitch("demo", "--dialect", "iso87-bcd")
    assert refused.returncode == 2 and "--dialect: only with --serve" in refused.stderr


def test_an_ebcdic_byte_that_reads_as_a_superscript_digit_is_not_a_digit():
    """cp500 decodes 0xEA as "²", which `str.isdigit` takes: an MTI (or amount) made of it is
    undecodable, not a request whose every later step would raise."""
    dialect = load_dialect("iso87-ebcdic")
    good = dialect.encode(Message("0200", {"3": "000000", "4": "000000001500", "11": "000001", "41": "T0000001",
                                           "49": "978"}))
    bad = bytearray(good)
    bad[2] = 0xEA
    with pytest.raises(MessageDecodeError, match="MTI is not 4 digits"):
        dialect.decode(bytes(bad))
    assert replacement_amount(Message("0400", {"95": "²00000000500" + "0" * 30})) is None
