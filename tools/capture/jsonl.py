"""Reading the project's JSON-lines captures (switch.capture.jsonl writes them), one frame per line."""

from __future__ import annotations

import json
from pathlib import Path

from switch.capture.record import DIRECTIONS, CapturedFrame, CaptureFormatError

KEYS = ("time", "connection", "direction", "dialect", "hex")


def loads(line: str, where: str) -> CapturedFrame:
    """One record; errors name `where` (file:line) and the key, never the line's content."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        raise CaptureFormatError(f"{where}: not a JSON object") from None
    if not isinstance(item, dict):
        raise CaptureFormatError(f"{where}: not a JSON object")
    missing = [key for key in KEYS if key not in item]
    if missing:
        raise CaptureFormatError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(item["time"], (int, float)) or isinstance(item["time"], bool):
        raise CaptureFormatError(f"{where}: time: expected seconds since the epoch")
    if item["direction"] not in DIRECTIONS:
        raise CaptureFormatError(f"{where}: direction: expected \"in\" or \"out\"")
    for key in ("connection", "dialect", "hex"):
        if not isinstance(item[key], str):
            raise CaptureFormatError(f"{where}: {key}: expected a string")
    try:
        data = bytes.fromhex(item["hex"])
    except ValueError:
        raise CaptureFormatError(f"{where}: hex: expected hexadecimal digits") from None
    return CapturedFrame(float(item["time"]), item["connection"], item["direction"], item["dialect"], data)


def read_jsonl(path: str | Path) -> list[CapturedFrame]:
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                records.append(loads(line, f"{path}:{number}"))
    return records
