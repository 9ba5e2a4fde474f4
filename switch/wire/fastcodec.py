"""A fast path for the dialect codec: the same field spec, compiled once, for well-formed messages.

pyiso8583 interprets the spec field by field on every call and builds bitmaps bit by bit; on the
switch's path that costs more than everything else it does (docs/performance.md). This module
compiles a spec into per-field plans (length-prefix width, maximum length, binary or ASCII) and
reads and writes bitmaps as integers. It handles only the subset our dialect files use — ASCII
length prefixes, ASCII or binary data, a fixed-width MTI, binary or hex bitmaps — and answers
None for anything unusual (a bad length, non-ASCII data, a tertiary bitmap, trailing bytes ...),
so the caller falls back to pyiso8583, which stays the reference and produces the exact error.
Whenever this module does answer, the result is identical to pyiso8583's (differential tests).
"""

from __future__ import annotations

import binascii
from typing import Any

HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# For bitmap byte position i and byte value v: the field numbers whose bits are set.
_FIELDS_IN_BYTE = [[tuple(i * 8 + bit + 1 for bit in range(8) if value & (0x80 >> bit)) for value in range(256)]
                   for i in range(16)]
_SECONDARY = 1 << 127  # field 1's bit in the 128-bit bitmap
# The same, as field keys, without field 1 (the secondary bitmap's bit, which the codec sets itself).
_KEYS_IN_BYTE = [[tuple(str(number) for number in numbers if number != 1) for numbers in by_value]
                 for by_value in _FIELDS_IN_BYTE]


def _fixed_ascii(field: dict[str, Any] | None) -> bool:
    return field is not None and field["len_type"] == 0 and field["data_enc"] == "ascii"


def _bitmap_format(field: dict[str, Any] | None) -> bool | None:
    """True for an 8-byte binary bitmap, False for 16 hex characters, None if neither."""
    if field is None or field["len_type"] != 0:
        return None
    if field["data_enc"] == "b" and field["max_len"] == 8:
        return True
    if field["data_enc"] == "ascii" and field["max_len"] == 16:
        return False
    return None


class CompiledSpec:
    """A spec compiled for speed: per bitmap byte, the plans of the fields it announces; per
    field key, the plan to write it. Built once per dialect, so a message costs a loop over its
    fields and nothing else."""

    def __init__(self, spec: dict[str, dict[str, Any]], binary_bitmap: bool, secondary: bool):
        self.mti_len = spec["t"]["max_len"]
        self.binary_bitmap = binary_bitmap
        self.secondary = secondary
        plans: dict[int, tuple[str, int, int, bool]] = {}
        for key, field in spec.items():
            if key.isdigit() and 2 <= int(key) <= 128 and int(key) != 65:
                plans[int(key)] = (str(int(key)), field["len_type"], field["max_len"], field["data_enc"] == "b")
        # Bitmap byte i with value v announces these fields; None when one has no plan.
        self._reading = [[self._read_plans(plans, fields) for fields in by_value] for by_value in _FIELDS_IN_BYTE]
        # Per key: its bitmap bit, prefix width, longest length (exact length when fixed; for a
        # variable field also what the prefix can express) and whether it is binary.
        self._writing = {key: (1 << (128 - number), len_type,
                               min(max_len, 10 ** len_type - 1) if len_type else max_len, binary)
                         for number, (key, len_type, max_len, binary) in plans.items()}

    @staticmethod
    def _read_plans(plans: dict[int, tuple[str, int, int, bool]], fields: tuple[int, ...]) -> tuple | None:
        wanted = [number for number in fields if number != 1]  # bit 1 announces the secondary bitmap
        if any(number not in plans for number in wanted):
            return None
        return tuple(plans[number] for number in wanted)

    # -- decoding ------------------------------------------------------------------------

    def _read_bitmap(self, s: bytes, pos: int) -> int | None:
        if self.binary_bitmap:
            chunk = s[pos:pos + 8]
            return int.from_bytes(chunk, "big") if len(chunk) == 8 else None
        chunk = s[pos:pos + 16]
        if len(chunk) != 16 or not HEX_DIGITS.issuperset(chunk):
            return None
        return int(chunk, 16)

    def decode(self, s: bytes) -> tuple[str, dict[str, str]] | None:
        """(MTI, fields) as pyiso8583 would give them, or None to let pyiso8583 decide."""
        pos = self.mti_len
        mti = s[:pos]
        if len(mti) != pos or not mti.isascii():
            return None
        width = 8 if self.binary_bitmap else 16
        bitmap = self._read_bitmap(s, pos)
        if bitmap is None:
            return None
        pos += width
        bitmap <<= 64
        if bitmap & _SECONDARY:
            secondary = self._read_bitmap(s, pos) if self.secondary else None
            if secondary is None or secondary >> 63:  # no spec, or a tertiary bitmap (field 65)
                return None
            bitmap |= secondary
            pos += width
        text = s.decode("latin-1")  # one decode; ASCII fields are slices of it, checked below
        fields: dict[str, str] = {}
        reading = self._reading
        end_of_message = len(s)
        for index, byte in enumerate(bitmap.to_bytes(16, "big")):
            if not byte:
                continue
            plans = reading[index][byte]
            if plans is None:
                return None
            for key, len_type, max_len, binary in plans:
                if len_type:
                    prefix = s[pos:pos + len_type]
                    if len(prefix) != len_type or not prefix.isdigit():
                        return None
                    size = int(prefix)
                    if size > max_len:
                        return None
                    pos += len_type
                else:
                    size = max_len
                end = pos + size
                if end > end_of_message:
                    return None
                if binary:
                    fields[key] = s[pos:end].hex().upper()
                else:
                    value = text[pos:end]
                    if not value.isascii():
                        return None
                    fields[key] = value
                pos = end
        return (text[:self.mti_len], fields) if pos == end_of_message else None

    # -- encoding ------------------------------------------------------------------------

    def _bitmap_text(self, value: int) -> str:
        return value.to_bytes(8, "big").decode("latin-1") if self.binary_bitmap else "%016X" % value

    def encode(self, mti: str, fields: dict[str, str]) -> bytes | None:
        """The bytes pyiso8583 would produce, or None to let pyiso8583 decide. Built as one
        latin-1 string (ASCII fields as they are, binary ones decoded from hex) and encoded once."""
        if type(mti) is not str or len(mti) != self.mti_len or not mti.isascii():
            return None
        writing = self._writing
        bitmap = 0
        for key, value in fields.items():
            plan = writing.get(key)
            if plan is None or type(value) is not str:
                return None
            bitmap |= plan[0]
        has_secondary = bitmap & 0xFFFF_FFFF_FFFF_FFFF != 0
        if has_secondary:
            if not self.secondary:
                return None
            bitmap |= _SECONDARY
        out = [mti, self._bitmap_text(bitmap >> 64)]
        if has_secondary:
            out.append(self._bitmap_text(bitmap & 0xFFFF_FFFF_FFFF_FFFF))
        # The bitmap's set bits, byte by byte, give the fields in wire order: no sort.
        for index, byte in enumerate(bitmap.to_bytes(16, "big")):
            if not byte:
                continue
            for key in _KEYS_IN_BYTE[index][byte]:
                _, len_type, longest, binary = writing[key]
                value = fields[key]
                if binary:
                    try:
                        value = binascii.a2b_hex(value).decode("latin-1")
                    except (binascii.Error, ValueError):
                        return None
                elif not value.isascii():
                    return None
                size = len(value)
                if len_type:
                    if size > longest:
                        return None
                    out.append("%0*d" % (len_type, size))
                elif size != longest:
                    return None
                out.append(value)
        return "".join(out).encode("latin-1")


def compile_spec(spec: dict[str, dict[str, Any]]) -> CompiledSpec | None:
    """A compiled codec for `spec`, or None when the spec uses what the fast path does not cover."""
    header = spec.get("h")
    if header is not None and not (_fixed_ascii(header) and header["max_len"] == 0):
        return None
    if not _fixed_ascii(spec.get("t")):
        return None
    primary = _bitmap_format(spec.get("p"))
    if primary is None:
        return None
    for key, field in spec.items():
        if set(field) - {"data_enc", "len_enc", "len_type", "max_len", "desc"}:
            return None
        if key.isdigit() and (field["len_enc"] != "ascii" or field["data_enc"] not in ("ascii", "b")
                              or field["len_type"] not in (0, 1, 2, 3, 4)):
            return None
    return CompiledSpec(spec, primary, _bitmap_format(spec.get("1")) == primary)
