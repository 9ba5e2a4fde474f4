"""What card data may be shown, and how.

Which fields are secret is switch.core.fields' table; this module applies its `shown` column:
the PAN as first 6 + last 4, track data, PIN blocks, ICC data, CVV2 and MACs never at all. Logs,
errors, the terminal emulator and `decode` all go through here.
"""

from __future__ import annotations

from typing import Mapping

from switch.core.fields import CVV2_TAG, HIDDEN_FIELDS, PAN_FIELDS

__all__ = ["CVV2_TAG", "HIDDEN_FIELDS", "mask_pan", "masked_value", "masked_fields", "pan_from_track2"]


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, the rest as '*'; short values are hidden entirely."""
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def pan_from_track2(track2: str) -> str | None:
    """The PAN part of a track 2 image (before '=' or 'D'), or None when it has none."""
    for separator in ("=", "D", "d"):
        if separator in track2:
            pan = track2.split(separator, 1)[0]
            return pan if pan.isdigit() else None
    return None


def field48_subelements(value: str) -> list[tuple[str, str]] | None:
    """Field 48's TLV subelements (2-digit tag, 2-digit length, value), or None if malformed."""
    out, pos = [], 0
    while pos < len(value):
        tag, length = value[pos : pos + 2], value[pos + 2 : pos + 4]
        if not (tag.isdigit() and length.isdigit()) or pos + 4 + int(length) > len(value):
            return None
        out.append((tag, value[pos + 4 : pos + 4 + int(length)]))
        pos += 4 + int(length)
    return out


def mask_field48(value: str) -> str:
    """Field 48 TLV with the CVV2 subelement hidden; unparseable content is hidden whole."""
    subelements = field48_subelements(value)
    if subelements is None:
        return "*" * len(value)
    return "".join(f"{tag}{len(data):02d}" + ("*" * len(data) if tag == CVV2_TAG else data)
                   for tag, data in subelements)


def masked_value(field: str, value: str) -> str:
    """A field's value as it may be displayed."""
    if field in PAN_FIELDS:
        return mask_pan(value)
    if field in HIDDEN_FIELDS:
        return f"<hidden, {len(value)} chars>"
    if field == "48":
        return mask_field48(value)
    return value


def masked_fields(fields: Mapping[str, str]) -> dict[str, str]:
    return {field: masked_value(field, value) for field, value in fields.items()}
