"""EMV chip data (field 55): BER-TLV, read to be checked and shown, never changed (the switch
forwards field 55 byte for byte).

BER-TLV as EMV uses it (EMV Book 3, Annex B): a tag of one byte, or more when its low five bits
are all set (then each next byte while its top bit is set); a length of one byte below 0x80, or
0x81-0x83 followed by that many length bytes; a value of that length. A tag whose first byte has
bit 6 set is constructed: its value is more TLV. Padding bytes 0x00 and 0xFF between objects
are skipped, as EMV allows. Anything else is not BER-TLV: field 55 gets 30.

Tags that carry card data are shown like the PAN (5A: first 6 and last 4 digits) or not at all
(57 track 2 equivalent, 9F1F track 1 discretionary data, 5F20 cardholder name, 9F6B track 2
data): in `decode`, logs and replay diffs. Errors name the byte offset, never a value.
"""

from __future__ import annotations

import attrs

from switch.wire.masking import mask_pan

HIDDEN_TAGS = frozenset({"57", "9F1F", "5F20", "9F6B", "56", "9F20"})  # track data, names
PAN_TAG = "5A"
MAX_DEPTH = 8  # constructed objects nested deeper than this are refused


class TlvError(ValueError):
    """Not BER-TLV; the message says where (a byte offset), never what."""


@attrs.frozen
class Tlv:
    tag: str  # upper-case hex
    value: bytes
    children: tuple[Tlv, ...] | None = None  # a constructed object's contents


def parse_tlv(data: bytes, depth: int = 0) -> tuple[Tlv, ...]:
    """Every data object in `data`, constructed ones with their contents; TlvError when it is
    not BER-TLV."""
    if depth > MAX_DEPTH:
        raise TlvError(f"constructed objects nested more than {MAX_DEPTH} deep")
    objects = []
    position = 0
    while position < len(data):
        if data[position] in (0x00, 0xFF):  # padding between objects
            position += 1
            continue
        start = position
        tag_end = _tag_end(data, position)
        length, value_start = _length(data, tag_end)
        value_end = value_start + length
        if value_end > len(data):
            raise TlvError(f"the object at byte {start} runs {value_end - len(data)} bytes past the end")
        value = data[value_start:value_end]
        constructed = bool(data[start] & 0x20)
        children = parse_tlv(value, depth + 1) if constructed else None
        objects.append(Tlv(data[start:tag_end].hex().upper(), value, children))
        position = value_end
    return tuple(objects)


def _tag_end(data: bytes, start: int) -> int:
    position = start + 1
    if data[start] & 0x1F == 0x1F:
        while True:
            if position >= len(data):
                raise TlvError(f"the tag at byte {start} is cut short")
            byte = data[position]
            position += 1
            if not byte & 0x80:
                break
            if position - start > 4:
                raise TlvError(f"the tag at byte {start} is longer than 4 bytes")
    return position


def _length(data: bytes, position: int) -> tuple[int, int]:
    if position >= len(data):
        raise TlvError(f"no length at byte {position}")
    first = data[position]
    if first < 0x80:
        return first, position + 1
    count = first & 0x7F
    if count == 0 or count > 3:
        raise TlvError(f"the length at byte {position} is not a definite length of 1 to 3 bytes")
    if position + 1 + count > len(data):
        raise TlvError(f"the length at byte {position} is cut short")
    return int.from_bytes(data[position + 1:position + 1 + count], "big"), position + 1 + count


def encode_tlv(objects: tuple[Tlv, ...]) -> bytes:
    """BER-TLV of `objects` (constructed ones from their children): for tests and tools."""
    out = bytearray()
    for item in objects:
        value = encode_tlv(item.children) if item.children is not None else item.value
        out += bytes.fromhex(item.tag)
        length = len(value)
        if length < 0x80:
            out.append(length)
        else:
            size = (length.bit_length() + 7) // 8
            out += bytes([0x80 | size]) + length.to_bytes(size, "big")
        out += value
    return bytes(out)


def shown_value(item: Tlv) -> str:
    """One primitive object's value as it may be displayed."""
    if item.tag in HIDDEN_TAGS:
        return f"<hidden, {len(item.value)} bytes>"
    if item.tag == PAN_TAG:
        return mask_pan(item.value.hex().upper().rstrip("F"))
    return item.value.hex().upper()


def shown_tlv(objects: tuple[Tlv, ...]) -> dict[str, object]:
    """Tag -> shown value (constructed: a nested dict); a repeated tag keeps its first value
    and the others under TAG#2, TAG#3 ..."""
    shown: dict[str, object] = {}
    for item in objects:
        name, number = item.tag, 2
        while name in shown:
            name, number = f"{item.tag}#{number}", number + 1
        shown[name] = shown_tlv(item.children) if item.children is not None else shown_value(item)
    return shown


def mask_icc(hex_value: str) -> str:
    """Field 55 (hex) as it may be displayed: its data objects, card data masked; what does
    not read as BER-TLV is hidden whole."""
    try:
        objects = parse_tlv(bytes.fromhex(hex_value))
    except (TlvError, ValueError):
        return f"<hidden, {len(hex_value) // 2} bytes: not BER-TLV>"
    return " ".join(f"{tag}={_flat(value)}" for tag, value in shown_tlv(objects).items())


def icc_differences(expected: str, actual: str) -> list[tuple[str, str | None, str | None]] | None:
    """Field 55 compared tag by tag (tags within constructed ones as 70.5F20), shown values, for
    replay diffs; None when either side is not BER-TLV (then the field is compared whole)."""
    try:
        ours, theirs = (_paths(shown_tlv(parse_tlv(bytes.fromhex(value)))) for value in (expected, actual))
    except (TlvError, ValueError):
        return None
    return [(tag, ours.get(tag), theirs.get(tag)) for tag in sorted(ours.keys() | theirs.keys())
            if ours.get(tag) != theirs.get(tag)]


def _paths(shown: dict[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for tag, value in shown.items():
        if isinstance(value, dict):
            flat |= _paths(value, f"{prefix}{tag}.")
        else:
            flat[prefix + tag] = str(value)
    return flat


def _flat(value: object) -> str:
    if isinstance(value, dict):
        return "{" + " ".join(f"{tag}={_flat(inner)}" for tag, inner in value.items()) + "}"
    return str(value)
