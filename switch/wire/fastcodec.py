"""A fast path for the dialect codec: the same field spec, compiled once, for well-formed messages.

pyiso8583 interprets the spec field by field on every call and builds bitmaps bit by bit; on the
switch's path that costs more than everything else it does (docs/performance.md). This module
compiles a spec into per-field plans and reads and writes bitmaps as integers. It covers what our
dialect files use: field data in ASCII, binary, packed BCD (digits counted in nibbles, odd counts
padded left or right) or an EBCDIC code page; length prefixes in ASCII digits, binary or BCD; an
MTI in ASCII, BCD or EBCDIC; binary or hex bitmaps. It answers None for anything unusual (a bad
length, a wrong pad, undecodable text, a tertiary bitmap, trailing bytes ...), so the caller falls
back to pyiso8583, which stays the reference and produces the exact error. Whenever this module
does answer, the result is identical to pyiso8583's (differential tests).
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
# How a field's data is written: ASCII text, raw bytes (a hex string in the message), packed BCD
# digits (counted in nibbles), or text in another code page (EBCDIC).
ASCII, HEX, BCD, CODEPAGE = range(4)
CODEPAGES = ("cp037", "cp500")
# How a length prefix is written: ASCII digits, a big-endian binary number, BCD digits.
LENGTH_KINDS = {"ascii": 0, "b": 1, "bcd": 2}
ASCII_LENGTH, BINARY_LENGTH, BCD_LENGTH = range(3)
# An ASCII length prefix's text by its width (1 to 3 digits) and the length: looked up, not
# formatted, for every variable-length field written.
_ASCII_LENGTHS = [()] + [tuple("%0*d" % (width, size) for size in range(10 ** width)) for width in (1, 2, 3)]
LAYOUTS_KEPT = 256  # field sets whose encoding layout a codec keeps (CompiledSpec._layout)


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


def _data_kind(field: dict[str, Any]) -> int | None:
    nibbles = field.get("len_count", "bytes") == "nibbles"
    if field["data_enc"] == "b":
        return BCD if nibbles else HEX
    if nibbles:
        return None  # text counted in nibbles: pyiso8583 alone
    return ASCII if field["data_enc"] == "ascii" else CODEPAGE if field["data_enc"] in CODEPAGES else None


def _extra(field: dict[str, Any], kind: int) -> Any:
    """BCD: its (left, right) pad characters; a code page field: the codec's name."""
    if kind == BCD:
        return field.get("left_pad", "")[:1], field.get("right_pad", "")[:1]
    return field["data_enc"] if kind == CODEPAGE else None


def _longest_prefix(len_kind: int, len_type: int) -> int:
    """The largest length a prefix of `len_type` bytes can express."""
    if len_kind == BINARY_LENGTH:
        return 256 ** len_type - 1
    return 10 ** (len_type * (2 if len_kind == BCD_LENGTH else 1)) - 1


class CompiledSpec:
    """A spec compiled for speed: per bitmap byte, the plans of the fields it announces; per
    field key, the plan to write it. Built once per dialect, so a message costs a loop over its
    fields and nothing else.

    A plan is (key, prefix width, longest length, data kind, length kind, extra): lengths count
    characters, bytes or nibbles as the field's data does; extra is BCD's pads or the code page."""

    def __init__(self, spec: dict[str, dict[str, Any]], binary_bitmap: bool, secondary: bool):
        mti = spec["t"]
        self.mti_kind = _data_kind({**mti, "len_count": "bytes"})
        self.mti_codec = mti["data_enc"] if self.mti_kind == CODEPAGE else "latin-1"
        self.mti_len = 2 if self.mti_kind == HEX else 4 if self.mti_kind == CODEPAGE else mti["max_len"]
        self.binary_bitmap = binary_bitmap
        self.secondary = secondary
        plans: dict[int, tuple[str, int, int, int, int, Any]] = {}
        for key, field in spec.items():
            if key.isdigit() and 2 <= int(key) <= 128 and int(key) != 65:
                kind = _data_kind(field)
                assert kind is not None  # compile_spec checked
                len_type, len_kind = field["len_type"], LENGTH_KINDS[field["len_enc"]]
                longest = min(field["max_len"], _longest_prefix(len_kind, len_type)) if len_type else field["max_len"]
                plans[int(key)] = (str(int(key)), len_type, longest, kind, len_kind, _extra(field, kind))
        # Bitmap byte i with value v announces these fields; None when one has no plan.
        self._reading = [[self._read_plans(plans, fields) for fields in by_value] for by_value in _FIELDS_IN_BYTE]
        # Per key: its bitmap bit and its plan.
        self._writing = {plan[0]: (1 << (128 - number), plan) for number, plan in plans.items()}
        # Per field set (its keys in the order the message holds them): what `_layout` found.
        self._layouts: dict[tuple[str, ...], tuple[tuple[str, ...], tuple]] = {}

    @staticmethod
    def _read_plans(plans: dict[int, tuple[str, int, int, int, int, Any]], fields: tuple[int, ...]) -> tuple | None:
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

    def _read_mti(self, s: bytes) -> str | None:
        mti = s[:self.mti_len]
        if len(mti) != self.mti_len:
            return None
        if self.mti_kind == HEX:
            return mti.hex().upper()
        if self.mti_kind == ASCII and not mti.isascii():
            return None
        return mti.decode(self.mti_codec)

    def decode(self, s: bytes) -> tuple[str, dict[str, str]] | None:
        """(MTI, fields) as pyiso8583 would give them, or None to let pyiso8583 decide."""
        mti = self._read_mti(s)
        if mti is None:
            return None
        pos = self.mti_len
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
        # One decode; ASCII fields are slices of it, checked below. str(...) rather than
        # s.decode(...): the compiled form then knows `text` is a str and slices it directly.
        text = str(s, "latin-1")
        fields: dict[str, str] = {}
        reading = self._reading
        end_of_message = len(s)
        for index, byte in enumerate(bitmap.to_bytes(16, "big")):
            if not byte:
                continue
            plans = reading[index][byte]
            if plans is None:
                return None
            for key, len_type, longest, kind, len_kind, extra in plans:
                if len_type:
                    prefix = s[pos:pos + len_type]
                    if len(prefix) != len_type:
                        return None
                    if len_kind == ASCII_LENGTH:
                        if not prefix.isdigit():
                            return None
                        size = int(prefix)
                    elif len_kind == BINARY_LENGTH:
                        size = int.from_bytes(prefix, "big")
                    else:
                        digits = prefix.hex()
                        if not digits.isdigit():
                            return None
                        size = int(digits)
                    if size > longest:
                        return None
                    pos += len_type
                else:
                    size = longest
                end = pos + ((size + 1) >> 1 if kind == BCD else size)
                if end > end_of_message:
                    return None
                if kind == ASCII:
                    value = text[pos:end]
                    if not value.isascii():
                        return None
                elif kind == CODEPAGE:
                    try:
                        value = s[pos:end].decode(extra)
                    except UnicodeDecodeError:
                        return None
                else:
                    value = s[pos:end].hex().upper()
                    if kind == BCD and size & 1:  # the pad nibble goes, as pyiso8583 takes it off
                        left, right = extra
                        if left and value[:1] == left:
                            value = value[1:]
                        elif right and value[-1:] == right:
                            value = value[:-1]
                        else:
                            return None
                fields[key] = value
                pos = end
        return (mti, fields) if pos == end_of_message else None

    # -- encoding ------------------------------------------------------------------------

    def _bitmap_text(self, value: int) -> str:
        return value.to_bytes(8, "big").decode("latin-1") if self.binary_bitmap else "%016X" % value

    def _mti_text(self, mti: str) -> str | None:
        if type(mti) is not str or not mti.isascii():
            return None
        try:
            data = binascii.a2b_hex(mti) if self.mti_kind == HEX else mti.encode(self.mti_codec)
        except (binascii.Error, ValueError):
            return None
        return data.decode("latin-1") if len(data) == self.mti_len else None

    def _layout(self, keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple] | None:
        """For a message with these field keys: its bitmap text(s), and the fields' plans in
        wire order; None when a key has no plan or needs a secondary bitmap the spec lacks.
        Kept for the first LAYOUTS_KEPT field sets: the switch's own messages come in a handful
        of shapes, and a terminal that sends every combination of fields must not grow it."""
        layout = self._layouts.get(keys)
        if layout is not None:
            return layout
        writing = self._writing
        bitmap = 0
        for key in keys:
            entry = writing.get(key)
            if entry is None:
                return None
            bitmap |= entry[0]
        has_secondary = bitmap & 0xFFFF_FFFF_FFFF_FFFF != 0
        if has_secondary:
            if not self.secondary:
                return None
            bitmap |= _SECONDARY
        bitmaps = [self._bitmap_text(bitmap >> 64)]
        if has_secondary:
            bitmaps.append(self._bitmap_text(bitmap & 0xFFFF_FFFF_FFFF_FFFF))
        # The bitmap's set bits, byte by byte, give the fields in wire order: no sort.
        plans = tuple(writing[key][1] for index, byte in enumerate(bitmap.to_bytes(16, "big")) if byte
                      for key in _KEYS_IN_BYTE[index][byte])
        layout = (tuple(bitmaps), plans)
        if len(self._layouts) < LAYOUTS_KEPT:
            self._layouts[keys] = layout
        return layout

    def encode(self, mti: str, fields: dict[str, str]) -> bytes | None:
        """The bytes pyiso8583 would produce, or None to let pyiso8583 decide. Built as one
        latin-1 string (ASCII fields as they are, the others converted to their bytes) and
        encoded once."""
        mti_text = self._mti_text(mti)
        if mti_text is None:
            return None
        layout = self._layout(tuple(fields))
        if layout is None:
            return None
        bitmaps, plans = layout
        out = [mti_text, *bitmaps]
        for key, len_type, longest, kind, len_kind, extra in plans:
            value = fields[key]
            if not isinstance(value, str):  # a str enum (a response code in field 39) is text
                return None
            size = len(value)
            if kind == ASCII:
                if not value.isascii():
                    return None
            else:
                try:
                    if kind == CODEPAGE:
                        value = value.encode(extra).decode("latin-1")
                        size = len(value)
                    else:
                        if kind == BCD and size & 1:
                            left, right = extra
                            value = left + value if left else value + right if right else value
                        value = binascii.a2b_hex(value).decode("latin-1")
                        if kind == HEX:
                            size = len(value)
                except (binascii.Error, ValueError):
                    return None
            if len_type:
                if size > longest:
                    return None
                if len_kind == ASCII_LENGTH:
                    out.append(_ASCII_LENGTHS[len_type][size] if len_type < len(_ASCII_LENGTHS) else
                               "%0*d" % (len_type, size))
                elif len_kind == BINARY_LENGTH:
                    out.append(size.to_bytes(len_type, "big").decode("latin-1"))
                else:
                    out.append(binascii.a2b_hex("%0*d" % (len_type * 2, size)).decode("latin-1"))
            elif size != longest:
                return None
            out.append(value)
        return "".join(out).encode("latin-1")


def compile_spec(spec: dict[str, dict[str, Any]]) -> CompiledSpec | None:
    """A compiled codec for `spec`, or None when the spec uses what the fast path does not cover."""
    header = spec.get("h")
    if header is not None and not (_fixed_ascii(header) and header["max_len"] == 0):
        return None
    mti = spec.get("t")
    if mti is None or mti["len_type"] != 0 or _data_kind({**mti, "len_count": "bytes"}) is None:
        return None
    if mti["data_enc"] == "ascii" and mti["max_len"] != 4:
        return None
    primary = _bitmap_format(spec.get("p"))
    if primary is None:
        return None
    for key, field in spec.items():
        if set(field) - {"data_enc", "len_enc", "len_type", "max_len", "desc", "len_count", "left_pad", "right_pad"}:
            return None
        if key.isdigit() and (field["len_enc"] not in LENGTH_KINDS or _data_kind(field) is None
                              or field["len_type"] not in (0, 1, 2, 3, 4)):
            return None
    return CompiledSpec(spec, primary, _bitmap_format(spec.get("1")) == primary)
