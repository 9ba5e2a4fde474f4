"""Captures: pcap reading with TCP reassembly, the JSON-lines format, pcapng writing, sanitizing."""

from __future__ import annotations

import sys

import dpkt
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.terminal import open_terminal
from switch.capture.jsonl import JsonlWriter, dumps
from switch.capture.pcapng import PcapngWriter
from switch.capture.record import CapturedFrame, CaptureFormatError
from switch.capture.sanitize import Sanitizer
from switch.capture.sink import open_capture
from switch.wire.dialect import load_dialect
from switch.wire.luhn import luhn_valid
from switch.wire.message import Message
from tools.capture.jsonl import loads, read_jsonl
from tools.capture.load import load_capture
from tools.capture.reassembly import StreamReassembler

PAN = "4761730000000011"
DIALECT = load_dialect("iso87-binary")
CLIENT, SERVER = ("10.1.1.1", 51515), ("10.1.1.2", 8583)


def request(stan: str) -> Message:
    return Message("0200", {"2": PAN, "3": "000000", "4": "000000001234", "11": stan, "41": "T0000001",
                            "49": "978"})


def answer(message: Message) -> Message:
    return Message("0210", {**message.fields, "39": "00"})


def packet(src, dst, seq: int, flags: int, payload: bytes = b"", ack: int = 0) -> bytes:
    tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq, ack=ack, flags=flags, data=payload)
    ip = dpkt.ip.IP(src=bytes(map(int, src[0].split("."))), dst=bytes(map(int, dst[0].split("."))),
                    p=dpkt.ip.IP_PROTO_TCP, data=tcp)
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def write_pcap(path, packets: list[bytes]) -> None:
    with open(path, "wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)
        for number, data in enumerate(packets):
            writer.writepkt(data, ts=1_700_000_000 + number / 100)


def messy_session(with_syn: bool = True) -> tuple[list[bytes], list[bytes], bytes]:
    """Two requests split across segments, out of order, retransmitted (whole and overlapping),
    and one answer split in two; client ISN near 2**32 so sequence numbers wrap."""
    ack = dpkt.tcp.TH_ACK
    first, second = DIALECT.frame(request("000001")), DIALECT.frame(request("000002"))
    response = DIALECT.frame(answer(request("000001")))
    stream = first + second
    c_isn, s_isn = 2**32 - 30, 5000
    c = (c_isn + 1) % 2**32
    cut1, cut2 = 17, len(first) + 9
    segments = [stream[:cut1], stream[cut1:cut2], stream[cut2:]]
    offsets = [0, cut1, cut2]
    seq = [(c + off) % 2**32 for off in offsets]
    packets = []
    if with_syn:
        packets += [packet(CLIENT, SERVER, c_isn, dpkt.tcp.TH_SYN),
                    packet(SERVER, CLIENT, s_isn, dpkt.tcp.TH_SYN | ack, ack=c),
                    packet(CLIENT, SERVER, c, ack, ack=s_isn + 1)]
    packets += [
        packet(CLIENT, SERVER, seq[0], ack, segments[0]),
        packet(CLIENT, SERVER, seq[2], ack, segments[2]),  # out of order: the last part first
        packet(CLIENT, SERVER, seq[0], ack, segments[0]),  # retransmitted whole
        packet(CLIENT, SERVER, (seq[1] - 5) % 2**32, ack, stream[cut1 - 5 : cut2]),  # overlaps what came before
        packet(SERVER, CLIENT, s_isn + 1, ack, response[:10]),
        packet(CLIENT, SERVER, seq[1], ack, segments[1]),  # retransmitted, arrives late
        packet(SERVER, CLIENT, s_isn + 11, ack, response[10:]),
    ]
    return packets, [first, second], response


def test_pcap_with_split_out_of_order_and_retransmitted_segments(tmp_path):
    packets, requests, response = messy_session()
    path = tmp_path / "messy.pcap"
    write_pcap(path, packets)
    records = load_capture(path)
    assert [(r.direction, r.data) for r in records if r.direction == "in"] == [("in", f) for f in requests]
    assert [r.data for r in records if r.direction == "out"] == [response]
    assert {r.connection for r in records} == {"10.1.1.1:51515"}
    assert DIALECT.decode(records[0].data[2:]) == request("000001")


def test_pcap_without_syn_needs_the_server_port(tmp_path):
    packets, requests, response = messy_session(with_syn=False)
    path = tmp_path / "nosyn.pcap"
    write_pcap(path, packets)
    with pytest.raises(CaptureFormatError, match="--server-port"):
        load_capture(path)
    records = load_capture(path, server_port=8583)
    assert [r.data for r in records if r.direction == "in"] == requests
    assert [r.data for r in records if r.direction == "out"] == [response]


def test_garbage_is_a_capture_format_error_naming_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"time": 1, "connection": "c", "direction": "in", "dialect": "x", "hex": "zz"}\n')
    with pytest.raises(CaptureFormatError, match=r"bad.jsonl:1: hex"):
        load_capture(path)


def test_pcapng_written_by_us_reads_back_with_the_same_frames(tmp_path):
    frames = [CapturedFrame(1_700_000_000.5, "terminals-1", "in", DIALECT.name, DIALECT.frame(request("000001"))),
              CapturedFrame(1_700_000_000.6, "pos-2", "in", DIALECT.name, DIALECT.frame(request("000002"))),
              CapturedFrame(1_700_000_000.7, "terminals-1", "out", DIALECT.name,
                            DIALECT.frame(answer(request("000001"))))]
    writer = PcapngWriter.open(tmp_path / "out.pcapng")
    for frame in frames:
        writer.write(frame)
    writer.close()
    back = load_capture(tmp_path / "out.pcapng")
    assert [(r.direction, r.data) for r in back] == [(f.direction, f.data) for f in frames]
    assert back[0].connection == back[2].connection != back[1].connection
    assert back[0].time == pytest.approx(frames[0].time, abs=1e-6)


records = st.builds(
    CapturedFrame,
    time=st.floats(min_value=0, max_value=4e9, allow_nan=False).map(lambda t: round(t, 6)),
    connection=st.text(min_size=1, max_size=20),
    direction=st.sampled_from(["in", "out"]),
    dialect=st.sampled_from(["iso87-binary", "pos-tpdu", "base24"]),
    data=st.binary(max_size=300),
)


@given(st.lists(records, max_size=20))
def test_jsonl_round_trip(tmp_path_factory, frames):
    path = tmp_path_factory.mktemp("jsonl") / "capture.jsonl"
    writer = JsonlWriter.open(path)
    for frame in frames:
        writer.write(frame)
    writer.close()
    assert read_jsonl(path) == frames
    assert [loads(dumps(f), "here") for f in frames] == frames


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=400), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_reassembly_under_any_segmentation_order_and_retransmission(data, isn, rng):
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 8)))) if len(data) > 1 else []
    bounds = list(zip([0, *cuts], [*cuts, len(data)]))
    segments = [(start, end) for start, end in bounds]
    segments += [rng.choice(bounds) for _ in range(rng.randint(0, 4))]  # retransmissions
    segments += [(max(0, s - 3), min(len(data), e + 3)) for s, e in rng.sample(bounds, k=min(2, len(bounds)))]
    rng.shuffle(segments)
    reassembler = StreamReassembler(isn)
    out = b"".join(chunk for start, end in segments
                   for chunk, _ in reassembler.add((isn + start) % 2**32, data[start:end], 0.0))
    assert out == data
    assert reassembler.pending == 0


def test_test_pans_are_luhn_valid_consistent_and_keep_the_bin():
    sanitizer = Sanitizer(b"key")
    mapped = sanitizer.test_pan(PAN)
    assert mapped != PAN and mapped[:6] == PAN[:6] and len(mapped) == len(PAN)
    assert luhn_valid(mapped)
    assert sanitizer.test_pan(PAN) == mapped
    assert Sanitizer(b"key").test_pan(PAN) == mapped
    assert Sanitizer(b"other").test_pan(PAN) != mapped
    assert sanitizer.test_pan("5200000000000015") != mapped


def test_sanitized_message_has_no_secrets():
    message = Message("0200", {"35": f"{PAN}=30121011234500000", "52": "0123456789ABCDEF",
                               "55": "9F2608AABBCCDDEEFF0011", "48": "0103abc9203123", "11": "000001"})
    clean = Sanitizer(b"key").message(message)
    assert clean["2"] == Sanitizer(b"key").test_pan(PAN)
    assert clean["14"] == "3012"
    assert clean["48"] == "0103abc"
    assert not {"35", "52", "55"} & set(clean.fields)


async def test_sanitized_capture_from_a_terminal_holds_no_original_pan(demo, tmp_path):
    path = tmp_path / "shared.jsonl"
    capture = open_capture(path, sanitize=True)
    async with open_terminal("127.0.0.1", demo.ports["terminals"], capture=capture) as terminal:
        await terminal.purchase(pan=PAN, amount=100, expiry="3012")
        await terminal.purchase(track2="5200000000000015=30121011234500000", amount=100,
                                pin_block="0123456789ABCDEF")
    capture.close()
    text = path.read_text()
    for secret in (PAN, "5200000000000015", "0123456789ABCDEF"):
        assert secret not in text and secret.encode().hex() not in text
    frames = read_jsonl(path)
    assert len(frames) == 4
    pans = {DIALECT.decode(f.data[2:]).get("2") for f in frames if f.direction == "in"}
    assert len(pans) == 2 and all(luhn_valid(p) for p in pans)


async def test_terminal_command_records_with_a_test_only_warning(demo, tmp_path):
    path = tmp_path / "echo.pcapng"
    result = await trio.run_process(
        [sys.executable, "-m", "switch.cli", "terminal", "echo", "--port", str(demo.ports["terminals"]),
         "--capture", str(path)], check=False, capture_stdout=True, capture_stderr=True)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.decode().splitlines() if line.startswith("cardswitch: warning:")]
    assert len(warnings) == 1 and "test environments only" in warnings[0]
    assert [r.direction for r in load_capture(path)] == ["in", "out"]
