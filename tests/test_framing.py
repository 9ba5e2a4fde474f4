"""Framing is sans-IO and must be correct under any chunking of the stream."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from switch.wire.framing import Frame, Framer, FramingError, FramingProfile, reply_tpdu

PROFILES = [
    FramingProfile("binary2"),
    FramingProfile("ascii4"),
    FramingProfile("binary2", tpdu=True),
    FramingProfile("binary2", etx=True),
]

payloads = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.length}-tpdu{p.tpdu}-etx{p.etx}")
@given(messages=payloads, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_any_chunking_yields_the_same_frames(profile, messages, cuts):
    tpdu = b"\x60\x00\x01\x00\x02" if profile.tpdu else b""
    stream = b"".join(profile.frame(m, tpdu) for m in messages)
    framer = Framer(profile)
    frames = [frame for chunk in chunked(stream, cuts) for frame in framer.feed(chunk)]
    assert frames == [Frame(payload=m, tpdu=tpdu) for m in messages]
    assert framer.buffered == 0


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
    assert reply_tpdu(b"\x60\x00\x01\x00\x02") == b"\x60\x00\x02\x00\x01"
