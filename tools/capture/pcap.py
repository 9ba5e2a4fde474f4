"""Reading pcap and pcapng files (tcpdump, Wireshark) into captured frames, with dpkt.

Each TCP connection is reassembled per direction (tools.capture.reassembly) and split into
frames by the dialect's framer. The server side is the endpoint on `server_port` when given,
else the one that received the SYN; connections with neither are skipped, since without a
server side requests cannot be told from responses.
"""

from __future__ import annotations

import socket
import struct
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import attrs
import dpkt

from switch.capture.record import CapturedFrame, CaptureFormatError, reframe
from switch.wire.dialect import Dialect
from switch.wire.framing import FramingError
from tools.capture.reassembly import StreamReassembler, seq_offset

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
Endpoint = tuple[str, int]
# Raw IP: LINKTYPE_RAW (101) as files store it, the platform DLT_RAW values (12, 14) some writers
# use, and LINKTYPE_IPV4 / LINKTYPE_IPV6 (228, 229).
RAW_IP_LINKTYPES = (101, 12, 14, 228, 229)
LINKTYPE_LINUX_SLL2 = 276


def is_packet_capture(head: bytes) -> bool:
    return head[:4] == PCAPNG_MAGIC or head[:4] in PCAP_MAGICS


@attrs.define
class _Direction:
    """Segments of one direction of one connection, as captured."""

    segments: list[tuple[int, bytes, float]] = attrs.field(factory=list)
    syn_seq: int | None = None


@attrs.define
class _Connection:
    ends: tuple[Endpoint, Endpoint]
    directions: dict[Endpoint, _Direction] = attrs.field(factory=lambda: defaultdict(_Direction))
    server: Endpoint | None = None  # destination of the first SYN


def _ip_layer(linktype: int, buf: bytes):
    if linktype == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet(buf).data
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(buf).data
    if linktype == LINKTYPE_LINUX_SLL2:
        return dpkt.sll2.SLL2(buf).data
    if linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        return dpkt.loopback.Loopback(buf).data
    if linktype in RAW_IP_LINKTYPES:
        return (dpkt.ip6.IP6 if buf[:1] and buf[0] >> 4 == 6 else dpkt.ip.IP)(buf)
    raise CaptureFormatError(f"unsupported link type {linktype} (expected Ethernet, Linux SLL, loopback or raw IP)")


def _address(ip) -> tuple[str, str]:
    family = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
    return socket.inet_ntop(family, ip.src), socket.inet_ntop(family, ip.dst)


def _packets(path: Path) -> Iterator[tuple[float, int, bytes]]:
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        try:
            reader = dpkt.pcapng.Reader(handle) if head == PCAPNG_MAGIC else dpkt.pcap.Reader(handle)
            linktype = reader.datalink()
            for timestamp, buf in reader:
                yield float(timestamp), linktype, buf
        except (ValueError, dpkt.UnpackError, struct.error) as exc:
            raise CaptureFormatError(f"{path}: not a readable pcap/pcapng file ({type(exc).__name__})") from None


def _collect(path: Path) -> dict[frozenset, _Connection]:
    connections: dict[frozenset, _Connection] = {}
    for timestamp, linktype, buf in _packets(path):
        try:
            ip = _ip_layer(linktype, buf)
        except (dpkt.UnpackError, IndexError):
            continue  # a truncated or foreign frame: not part of any TCP stream we can use
        tcp = getattr(ip, "data", None)
        if not isinstance(tcp, dpkt.tcp.TCP):
            continue
        src_ip, dst_ip = _address(ip)
        src, dst = (src_ip, tcp.sport), (dst_ip, tcp.dport)
        connection = connections.setdefault(frozenset((src, dst)), _Connection((src, dst)))
        direction = connection.directions[src]
        if tcp.flags & dpkt.tcp.TH_SYN:
            direction.syn_seq = tcp.seq
            if not tcp.flags & dpkt.tcp.TH_ACK and connection.server is None:
                connection.server = dst
        if tcp.data:
            direction.segments.append((tcp.seq, bytes(tcp.data), timestamp))
    return connections


def _stream(direction: _Direction) -> Iterator[tuple[bytes, float]]:
    """The direction's bytes in order; without a SYN, from the lowest sequence number seen."""
    if not direction.segments:
        return
    if direction.syn_seq is not None:
        start = direction.syn_seq + 1
    else:
        first = direction.segments[0][0]
        start = min((seq for seq, _, _ in direction.segments), key=lambda seq: seq_offset(seq, first))
    reassembler = StreamReassembler(start)
    for seq, payload, timestamp in direction.segments:
        yield from reassembler.add(seq, payload, timestamp)


def read_packet_capture(path: str | Path, dialect: Dialect, server_port: int | None = None) -> list[CapturedFrame]:
    """Every frame of every TCP connection with a known server side, in capture-time order."""
    path = Path(path)
    records: list[CapturedFrame] = []
    for connection in _collect(path).values():
        if server_port is not None:
            server = next((end for end in connection.ends if end[1] == server_port), None)
        else:
            server = connection.server
        if server is None:
            continue
        client = connection.ends[1] if connection.ends[0] == server else connection.ends[0]
        name = f"{client[0]}:{client[1]}"
        for source, direction in connection.directions.items():
            records += _frames(dialect, direction, name, "in" if source == client else "out")
    if not records:
        hint = "" if server_port is not None else "; give --server-port if the SYNs were not captured"
        raise CaptureFormatError(f"{path}: no {dialect.name} frames found in any TCP connection{hint}")
    records.sort(key=lambda record: record.time)
    return records


def _frames(dialect: Dialect, direction: _Direction, name: str, way: str) -> list[CapturedFrame]:
    framer = dialect.framer(max_frame=0xFFFF)
    out = []
    try:
        for chunk, timestamp in _stream(direction):
            for frame in framer.feed(chunk):
                out.append(CapturedFrame(timestamp, name, way, dialect.name, reframe(dialect, frame)))
    except FramingError as exc:
        raise CaptureFormatError(f"connection {name} ({way}): {exc}; is --dialect right?") from None
    return out
