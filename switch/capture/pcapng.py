"""Writing captured frames as pcapng, so a capture opens in Wireshark.

The project records frames, not packets, so each connection is given a synthetic Ethernet/IPv4/
TCP identity: client 10.0.0.1 on port 40000 + n, server 10.0.0.2 on `server_port`, a three-way
handshake before the first frame, and one PSH/ACK segment per frame with consistent sequence and
acknowledgement numbers. Wireshark's iso8583 dissector (Decode As... on the server port) and
`cardswitch replay` both read it back; the connection id becomes the client's port.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import BinaryIO

import attrs
import dpkt

from switch.capture.record import CapturedFrame

CLIENT_IP = bytes((10, 0, 0, 1))
SERVER_IP = bytes((10, 0, 0, 2))
CLIENT_MAC = b"\x02\x00\x00\x00\x00\x01"
SERVER_MAC = b"\x02\x00\x00\x00\x00\x02"
FIRST_CLIENT_PORT = 40000
ISN = 1000
MAX_PAYLOAD = 65495  # what fits an IPv4 packet with plain IP and TCP headers


@attrs.define
class _Flow:
    client_port: int
    client_seq: int = ISN + 1
    server_seq: int = ISN + 1


class PcapngWriter:
    def __init__(self, handle: BinaryIO, server_port: int = 8583):
        self._handle = handle
        self._writer = dpkt.pcapng.Writer(handle, snaplen=0xFFFF, linktype=dpkt.pcap.DLT_EN10MB)
        self._server_port = server_port
        self._ports = itertools.count(FIRST_CLIENT_PORT)
        self._flows: dict[str, _Flow] = {}

    @classmethod
    def open(cls, path: str | Path, server_port: int = 8583) -> PcapngWriter:
        return cls(open(path, "wb"), server_port)

    def write(self, record: CapturedFrame) -> None:
        flow = self._flows.get(record.connection)
        if flow is None:
            flow = self._flows[record.connection] = _Flow(next(self._ports))
            self._handshake(flow, record.time)
        from_client = record.direction == "in"
        for start in range(0, len(record.data), MAX_PAYLOAD):
            chunk = record.data[start : start + MAX_PAYLOAD]
            flags = dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK
            self._segment(flow, from_client, flags, chunk, record.time)
            if from_client:
                flow.client_seq += len(chunk)
            else:
                flow.server_seq += len(chunk)
        self._handle.flush()  # like the JSON-lines writer: complete up to the last frame

    def _handshake(self, flow: _Flow, time: float) -> None:
        flow.client_seq -= 1
        self._segment(flow, True, dpkt.tcp.TH_SYN, b"", time)
        flow.client_seq += 1
        flow.server_seq -= 1
        self._segment(flow, False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, b"", time)
        flow.server_seq += 1
        self._segment(flow, True, dpkt.tcp.TH_ACK, b"", time)

    def _segment(self, flow: _Flow, from_client: bool, flags: int, payload: bytes, time: float) -> None:
        ports = (flow.client_port, self._server_port)
        seqs = (flow.client_seq, flow.server_seq)
        ips, macs = (CLIENT_IP, SERVER_IP), (CLIENT_MAC, SERVER_MAC)
        a, b = (0, 1) if from_client else (1, 0)
        ack = 0 if flags == dpkt.tcp.TH_SYN else seqs[b]
        tcp = dpkt.tcp.TCP(sport=ports[a], dport=ports[b], seq=seqs[a] % (1 << 32), ack=ack % (1 << 32),
                           flags=flags, win=65535, data=payload)
        ip = dpkt.ip.IP(src=ips[a], dst=ips[b], p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
        ethernet = dpkt.ethernet.Ethernet(src=macs[a], dst=macs[b], type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
        self._writer.writepkt(bytes(ethernet), ts=time)

    def close(self) -> None:
        self._handle.close()
