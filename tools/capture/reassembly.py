"""Sans-IO reassembly of one direction of a TCP stream from captured segments.

Segments may arrive in any order, be retransmitted whole or in part, or overlap; bytes come out
once, in sequence order, each chunk with the capture time at which it became readable (the time
of the segment that closed the gap before it, as a receiving application would have seen it).
Sequence numbers wrap at 2**32, so every comparison is made relative to the next expected byte.
"""

from __future__ import annotations

SEQ_MOD = 1 << 32


def seq_offset(seq: int, base: int) -> int:
    """Signed distance from `base` to `seq` in sequence space (negative = already behind)."""
    offset = (seq - base) % SEQ_MOD
    return offset - SEQ_MOD if offset >= SEQ_MOD // 2 else offset


class StreamReassembler:
    """Feed segments with `add()`; it returns the bytes that became contiguous.

    `start` is the sequence number of the first data byte (the SYN's sequence number + 1); when
    the SYN was not captured the caller passes the lowest sequence number it saw.
    """

    def __init__(self, start: int):
        self._next = start % SEQ_MOD
        self._pending: dict[int, tuple[bytes, float]] = {}

    @property
    def pending(self) -> int:
        """Segments held back by a gap (a segment the capture never saw)."""
        return len(self._pending)

    def add(self, seq: int, payload: bytes, time: float) -> list[tuple[bytes, float]]:
        if not payload or seq_offset(seq, self._next) + len(payload) <= 0:
            return []  # empty or a full retransmission of delivered bytes
        held = self._pending.get(seq)
        if held is None or len(held[0]) < len(payload):
            self._pending[seq] = (payload, time)
        return self._drain(time)

    def _drain(self, now: float) -> list[tuple[bytes, float]]:
        out: list[tuple[bytes, float]] = []
        progressed = True
        while progressed:
            progressed = False
            for seq in list(self._pending):
                offset = seq_offset(seq, self._next)
                if offset > 0:
                    continue
                payload, time = self._pending.pop(seq)
                if offset + len(payload) > 0:
                    chunk = payload[-offset:] if offset else payload
                    out.append((chunk, max(time, now)))
                    self._next = (self._next + len(chunk)) % SEQ_MOD
                    progressed = True
        return out
