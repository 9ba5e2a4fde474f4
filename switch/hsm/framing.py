"""2-byte big-endian length framing for host commands, sans-IO (feed bytes, get frames)."""

from __future__ import annotations

MAX_FRAME = 0xFFFF


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ValueError("host command frame longer than 65535 bytes")
    return len(payload).to_bytes(2, "big") + payload


class FrameDecoder:
    """Accumulates received bytes and yields complete frames in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + length:
                break
            frames.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
        return frames

    @property
    def pending(self) -> bool:
        return bool(self._buffer)
