"""What card data may be shown, and how.

Which fields are secret is switch.core.fields' table; this module applies its `shown` column:
the PAN as first 6 + last 4, track data, PIN blocks, ICC data, CVV2 and MACs never at all. Logs,
errors, the terminal emulator and `decode` all go through here.
"""

from __future__ import annotations

import re
from typing import Mapping, overload

from switch.core.fields import CVV2_TAG, HIDDEN_FIELDS, ICC_FIELDS, PAN_FIELDS
from switch.wire.field48 import Layout, read as read_field48
from switch.wire.luhn import valid_windows

__all__ = ["CVV2_TAG", "HIDDEN_FIELDS", "mask_pan", "mask_pan_like", "masked_value", "masked_fields",
           "pan_from_track2"]

PAN_SHORTEST, PAN_LONGEST = 13, 19
_DIGIT_RUN = re.compile(r"[0-9]{%d,}" % PAN_SHORTEST)


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, the rest as '*'; short values are hidden entirely."""
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


@overload
def mask_pan_like(text: str) -> str: ...
@overload
def mask_pan_like(text: None) -> None: ...


def mask_pan_like(text: str | None) -> str | None:
    """`text` with every digit run that may be a PAN masked, whatever field it came in (None,
    an absent field, as it is).

    A misaligned or garbled frame puts card data where no one expects it (a track 2 tail in
    the RRN or merchant id), so a value's field says nothing: any 13 to 19 consecutive digits
    that pass the Luhn check, alone or inside a longer run of digits, keep their first 6 and
    last 4 digits and lose the rest to '*'. One pass over the runs is enough: masking only turns
    digits into '*', so every run of digits left was part of a run already checked window by
    window, and a valid window among them had its middle masked. The length never changes; digit
    runs that hold no Luhn-valid window of 13 to 19 digits stay as they are. Cheap for the
    common case: a value shorter than 13 characters, or without 13 digits in a row, is
    returned as it is (a long all-digit value, such as field 90, may lose digits: better masked
    than leaked). A text with long digit runs and nothing to mask is remembered (`_UNMASKED`):
    an all-digit merchant id without a Luhn-valid window (about half of them) comes with every
    request of its merchant, and checking its six windows took 46,000 instructions, about 4 % of
    a transaction.
    """
    if text is None or len(text) < PAN_SHORTEST or text in _UNMASKED:
        return text
    run = _DIGIT_RUN.search(text)
    if run is None:
        return text
    chars = list(text)
    masked = False
    while run is not None:  # searched on from each run's end: one scan of the text in all
        masked = _mask_run(chars, run.start(), run.group()) or masked
        run = _DIGIT_RUN.search(text, run.end())
    if masked:
        return "".join(chars)
    if len(_UNMASKED) >= UNMASKED_KEPT:
        _UNMASKED.clear()
    _UNMASKED[text] = None
    return text


# Texts found with nothing to mask (never one that held a PAN-like run: those are not kept), up
# to UNMASKED_KEPT; then forgotten all at once, so a client sending ever new ones cannot grow it.
UNMASKED_KEPT = 4096
_UNMASKED: dict[str, None] = {}


def _mask_run(chars: list[str], start: int, run: str) -> bool:
    """Mask, in `chars`, the middle of each Luhn-valid window of `run` (found at `start`); True
    when there was one."""
    windows = valid_windows(run, PAN_SHORTEST, PAN_LONGEST)
    for offset, length in windows:
        chars[start + offset + 6:start + offset + length - 4] = "*" * (length - 10)
    return bool(windows)


def pan_from_track2(track2: str) -> str | None:
    """The PAN part of a track 2 image (before '=' or 'D'), or None when it has none."""
    for separator in ("=", "D", "d"):
        if separator in track2:
            pan = track2.split(separator, 1)[0]
            return pan if pan.isdigit() else None
    return None


def mask_field48(value: str, layout: Layout | None = None) -> str:
    """Field 48 with the CVV2 subelement hidden and PAN-like digits in the others masked, read in
    `layout` (in the one layout it reads in when none is known); what does not read is hidden
    whole."""
    parsed = read_field48(value, layout)
    return "*" * len(value) if parsed is None else parsed.shown(CVV2_TAG, mask_pan_like).encode()


def masked_value(field: str, value: str, layout: Layout | None = None) -> str:
    """A field's value as it may be displayed; `layout` is field 48's, where the dialect the
    value came in is known."""
    if field in PAN_FIELDS:
        return mask_pan(value)
    if field in HIDDEN_FIELDS:
        return f"<hidden, {len(value)} chars>"
    if field in ICC_FIELDS:
        from switch.wire.emv import mask_icc  # emv masks its PAN tag with mask_pan, from here
        return mask_icc(value)
    if field == "48":
        return mask_field48(value, layout)
    return mask_pan_like(value)


def masked_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """For a message whose dialect is not known here (a log line): field 48 in the one layout
    it reads in."""
    return {field: masked_value(field, value) for field, value in fields.items()}
