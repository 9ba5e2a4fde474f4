"""Framing is sans-IO and must be correct under any chunking of the stream."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from switch.wire.framing import Frame, Framer, FramingError, FramingProfile
from switch.wire.headers import Base24Header, NetworkHeader, Tpdu, VisaHeader

PROFILES = [
    FramingProfile("binary2"),
    FramingProfile("ascii4"),
    FramingProfile("binary2", header=Tpdu()),
    FramingProfile("binary2", etx=True),
    FramingProfile("vap", header=VisaHeader()),
    FramingProfile("binary2", header=Base24Header(), etx=True),
]
HEADERS = {"none": b"", "tpdu": b"\x60\x00\x01\x00\x02",
           "visa": bytes([22, 1, 2, 0, 0, 0x12, 0x34, 0x56, 0x65, 0x43, 0x21]) + bytes(11),
           "base24": b"ISO026000070"}

payloads = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.length}-{p.header.kind}-etx{p.etx}")
@given(messages=payloads, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_any_chunking_yields_the_same_frames(profile, messages, cuts):
    header = HEADERS[profile.header.kind]
    stream = b"".join(profile.frame(m, header) for m in messages)
    framer = Framer(profile)
    frames = [frame for chunk in chunked(stream, cuts) for frame in framer.feed(chunk)]
    assert frames == [Frame(payload=m, header=profile.header.complete(header, len(m))) for m in messages]
    assert framer.buffered == 0


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.length}-{p.header.kind}-etx{p.etx}")
@given(stream=st.binary(max_size=400))
def test_garbage_is_frames_or_a_framing_error(profile, stream):
    """A hostile peer's bytes: whatever they are, the framer answers with frames or FramingError."""
    try:
        Framer(profile, max_frame=512).feed(stream)
    except FramingError:
        pass


def test_binary_length_header_is_two_bytes_big_endian():
    assert FramingProfile("binary2").frame(b"x" * 258) == b"\x01\x02" + b"x" * 258


def test_ascii_length_header_is_four_digits():
    assert FramingProfile("ascii4").frame(b"0800abc") == b"00070800abc"


def test_frame_over_the_maximum_is_rejected():
    framer = Framer(FramingProfile("binary2"), max_frame=8192)
    with pytest.raises(FramingError, match="exceeds the maximum of 8192"):
        framer.feed((8193).to_bytes(2, "big"))


def test_non_digit_ascii_length_is_rejected():
    with pytest.raises(FramingError, match="4 ASCII digits"):
        Framer(FramingProfile("ascii4")).feed(b"00x5hello")


def test_zero_length_frame_is_rejected():
    with pytest.raises(FramingError, match="too short"):
        Framer(FramingProfile("binary2")).feed(b"\x00\x00")


def test_etx_must_end_the_frame():
    with pytest.raises(FramingError, match="ETX"):
        Framer(FramingProfile("binary2", etx=True)).feed(b"\x00\x03abc")


def test_reply_tpdu_swaps_destination_and_source():
    assert Tpdu().for_reply(b"\x60\x00\x01\x00\x02") == b"\x60\x00\x02\x00\x01"


def test_vap_length_is_two_bytes_and_two_zero_bytes():
    assert FramingProfile("vap").frame(b"x" * 258) == b"\x01\x02\x00\x00" + b"x" * 258
    with pytest.raises(FramingError, match="VAP"):
        Framer(FramingProfile("vap")).feed(b"\x00\x05\x00\x01hello")


def test_visa_header_carries_the_total_length_and_a_reply_swaps_the_stations():
    profile = FramingProfile("vap", header=VisaHeader())
    [frame] = Framer(profile).feed(profile.frame(b"0100" + bytes(40), HEADERS["visa"]))
    assert frame.header[3:5] == (22 + 44).to_bytes(2, "big")
    reply = profile.reply_header(frame.header)
    assert reply[5:8] == bytes([0x65, 0x43, 0x21]) and reply[8:11] == bytes([0x12, 0x34, 0x56])
    assert len(reply) == 22 and reply[0] == 22


def test_visa_reject_header_is_read_whole_and_answered_with_22_bytes():
    profile = FramingProfile("binary2", header=VisaHeader())
    reject = bytes([26]) + HEADERS["visa"][1:] + b"\x80\x00\x00\x12"
    data = len(reject + b"0110abcd").to_bytes(2, "big") + reject + b"0110abcd"
    [frame] = Framer(profile).feed(data)
    assert frame.header == reject and frame.payload == b"0110abcd"
    assert len(profile.reply_header(frame.header)) == 22
    assert VisaHeader().rejection(frame.header) == "0012"
    assert VisaHeader().rejection(HEADERS["visa"]) is None


@pytest.mark.parametrize("length_byte", [0, 21, 200])
def test_visa_header_with_an_impossible_length_is_a_framing_error(length_byte):
    profile = FramingProfile("binary2", header=VisaHeader())
    body = bytes([length_byte]) + bytes(40)
    with pytest.raises(FramingError, match="Visa header length"):
        Framer(profile).feed(len(body).to_bytes(2, "big") + body)


def test_base24_header_must_start_with_iso_and_a_reply_names_the_responder():
    profile = FramingProfile("binary2", header=Base24Header(responder="7"))
    assert profile.reply_header(b"ISO026000050") == b"ISO026000057"
    with pytest.raises(FramingError, match="BASE24 header"):
        Framer(profile).feed(b"\x00\x10XYZ0260000500800")


def test_no_header_kind_sends_nothing_in_front():
    assert NetworkHeader().complete(b"", 10) == b""
    assert FramingProfile("binary2").frame(b"0800", b"") == b"\x00\x040800"
