"""EMV chip data (field 55): BER-TLV read strictly, shown with card data masked, checked on the
way in (30 when it does not read), compared tag by tag in replay diffs."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from emulators.terminal import open_terminal
from switch.core.messages import check_request
from switch.wire.emv import Tlv, TlvError, encode_tlv, icc_differences, mask_icc, parse_tlv
from switch.wire.masking import masked_fields
from switch.wire.message import Message
from tools.replay.compare import compare

APPROVE, EXPIRY = "4761730000000011", "3012"
PRIMITIVE_TAGS = st.sampled_from(["9F02", "9F03", "9F26", "82", "95", "9A", "9C", "5F2A", "9F36", "9F1A", "84"])


def _objects(depth: int = 2):
    primitive = st.builds(Tlv, PRIMITIVE_TAGS, st.binary(max_size=300))
    if depth == 0:
        return st.lists(primitive, max_size=4).map(tuple)
    constructed = st.builds(lambda tag, children: Tlv(tag, encode_tlv(children), children),
                            st.sampled_from(["70", "77", "A5", "BF0C"]), _objects(depth - 1))
    return st.lists(st.one_of(primitive, constructed), max_size=4).map(tuple)


@given(_objects())
def test_what_is_encoded_reads_back_the_same(objects):
    assert parse_tlv(encode_tlv(objects)) == objects


@given(st.binary(max_size=200))
def test_any_bytes_read_or_fail_with_a_tlv_error_that_shows_no_value(data):
    try:
        parse_tlv(data)
    except TlvError as exc:
        assert data.hex() not in str(exc) or len(data) < 2


@given(st.from_regex(r"4[0-9]{15}", fullmatch=True), st.text(alphabet="ABCDEFGHIJ/ ", min_size=2, max_size=26))
def test_card_data_tags_are_never_shown_whole(pan, name):
    icc = encode_tlv((Tlv("9F02", bytes.fromhex("000000001234")), Tlv("5A", bytes.fromhex(pan)),
                      Tlv("57", bytes.fromhex(pan + "D30122011234")),
                      Tlv("70", b"", (Tlv("5F20", name.encode()),)))).hex().upper()
    shown = mask_icc(icc)
    assert pan not in shown and name.encode().hex().upper() not in shown
    assert f"5A={pan[:6]}******{pan[-4:]}" in shown and "9F02=000000001234" in shown
    assert pan not in str(masked_fields({"55": icc}))


@pytest.mark.parametrize("data, where", [
    ("9F0206000000", "the object at byte 0 runs 3 bytes past the end"),
    ("9F", "the tag at byte 0 is cut short"),
    ("9F0280", "the length at byte 2 is not a definite length of 1 to 3 bytes"),
])
def test_malformed_chip_data_is_named_by_its_offset(data, where):
    with pytest.raises(TlvError, match=where):
        parse_tlv(bytes.fromhex(data))
    rejection = check_request(Message("0200", {"2": APPROVE, "3": "000000", "4": "000000000100", "7": "1201120000",
                                               "11": "000001", "14": EXPIRY, "41": "T0000001", "49": "978",
                                               "55": data}))
    assert rejection is not None and (rejection.code, rejection.brief) == ("30", "F55: not BER-TLV")
    assert rejection.reason == f"field 55: not BER-TLV ({where})"


def test_replay_diffs_name_the_tags_that_differ():
    before = encode_tlv((Tlv("9F02", bytes.fromhex("000000001234")), Tlv("9F36", b"\x00\x01"))).hex().upper()
    after = encode_tlv((Tlv("9F02", bytes.fromhex("000000001234")), Tlv("9F36", b"\x00\x02"))).hex().upper()
    assert icc_differences(before, after) == [("9F36", "0001", "0002")]
    diffs = compare(Message("0210", {"39": "00", "55": before}), Message("0210", {"39": "00", "55": after}))
    assert [(diff.field, diff.expected, diff.actual) for diff in diffs] == [("55.9F36", "0001", "0002")]


async def test_chip_purchases_pass_and_malformed_chip_data_gets_30(demo):
    icc = encode_tlv((Tlv("9F02", bytes.fromhex("000000000100")), Tlv("5A", bytes.fromhex(APPROVE)))).hex().upper()
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        chip = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
        chip["55"] = icc
        broken = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
        broken["55"] = "9F0206000000"
        assert (await terminal.send(chip))["39"] == "00"
        answer = await terminal.send(broken)
    assert (answer["39"], answer["44"]) == ("30", "F55: not BER-TLV")
