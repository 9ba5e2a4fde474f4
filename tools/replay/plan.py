"""From captured frames to what replay sends: per connection, each request with its captured answer.

Requests and answers are paired within their captured connection by the QMUX key (response MTI,
field 11, field 41), the way the switch pairs them on issuer links. Each exchange also remembers
which earlier answers the terminal already had when it sent the request, so replay keeps that
causality (a reversal never overtakes the answer to its original) even at full speed.
"""

from __future__ import annotations

import attrs

from switch.capture.record import CapturedFrame, CaptureFormatError, unframe
from switch.wire.dialect import Dialect, MessageDecodeError, load_dialect
from switch.wire.framing import FramingError
from switch.wire.message import Message, is_response, response_mti


@attrs.define
class Exchange:
    number: int  # 1-based, in capture order across all connections
    connection: str
    time: float
    dialect: Dialect
    request: Message
    header: bytes  # the network header it came with (switch.wire.headers)
    expected: Message | None = None
    expected_time: float | None = None
    waits_for: tuple[int, ...] = ()


@attrs.define
class Plan:
    conversations: dict[str, list[Exchange]]
    start: float
    skipped: int  # captured frames that were undecodable or answered nothing

    @property
    def exchanges(self) -> list[Exchange]:
        return sorted((e for c in self.conversations.values() for e in c), key=lambda e: e.number)


def match_key(message: Message) -> tuple[str, str, str]:
    return response_mti(message.mti), message.get("11", ""), message.get("41", "")


def _decode(record: CapturedFrame) -> tuple[Message, bytes] | None:
    try:
        dialect = load_dialect(record.dialect)
        frame = unframe(dialect, record.data)
        return dialect.decode(frame.payload), frame.header
    except (CaptureFormatError, FramingError, MessageDecodeError):
        return None


def build_plan(records: list[CapturedFrame]) -> Plan:
    conversations: dict[str, list[Exchange]] = {}
    open_requests: dict[tuple[str, tuple[str, str, str]], list[Exchange]] = {}
    skipped = 0
    number = 0
    for record in sorted(records, key=lambda r: r.time):
        decoded = _decode(record)
        if decoded is None:
            skipped += 1
            continue
        message, header = decoded
        if record.direction == "in" and not is_response(message.mti):
            number += 1
            exchange = Exchange(number, record.connection, record.time, load_dialect(record.dialect),
                                message, header)
            conversation = conversations.setdefault(record.connection, [])
            exchange.waits_for = tuple(e.number for e in conversation
                                       if e.expected_time is not None and e.expected_time <= record.time)
            conversation.append(exchange)
            open_requests.setdefault((record.connection, match_key(message)), []).append(exchange)
            continue
        waiting = open_requests.get((record.connection, (message.mti, message.get("11", ""), message.get("41", ""))))
        if record.direction == "out" and waiting:
            exchange = waiting.pop(0)
            exchange.expected, exchange.expected_time = message, record.time
        else:
            skipped += 1
    start = min((r.time for r in records), default=0.0)
    return Plan(conversations, start, skipped)
