"""Sanitizing captures that must be shared: test PANs instead of real ones, no secrets.

- PANs (fields 2 and 34, and the PAN inside track 2) become Luhn-valid test PANs of the same length that
  keep the 6-digit BIN, so routing and the issuer's BIN-based behaviour still replay. The other
  digits come from HMAC-SHA256 of the PAN under a key: the same PAN always maps to the same test
  PAN under the same key, and without the key the mapping cannot be reversed by trying the
  (small) space of PANs of a BIN. The key is CARDSWITCH_SANITIZE_KEY when set (consistent across
  captures), else random per process (consistent within one capture).
- Track data (35, 36, 45), PIN block (52), security info (53), ICC data (55) and MACs (64, 128)
  are dropped; the CVV2 subelement (tag 92) is removed from field 48. A request that carried its
  card only in track 2 gets the mapped PAN in field 2 and the track's expiry in field 14, so it
  still routes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from switch.capture.record import CaptureFormatError, unframe
from switch.wire.dialect import Dialect, MessageDecodeError, MessageEncodeError
from switch.wire.field48 import Layout, without_tag
from switch.wire.framing import FramingError
from switch.wire.luhn import luhn_check_digit
from switch.core.fields import CVV2_TAG, HIDDEN_FIELDS, ICC_FIELDS, PAN_FIELDS
from switch.wire.masking import pan_from_track2
from switch.wire.message import Message

KEY_ENV = "CARDSWITCH_SANITIZE_KEY"
BIN_LENGTH = 6


class Sanitizer:
    def __init__(self, key: bytes | None = None):
        env = os.environ.get(KEY_ENV)
        self._key = key or (env.encode() if env else secrets.token_bytes(32))

    def test_pan(self, pan: str) -> str:
        if not pan.isdigit() or len(pan) <= BIN_LENGTH + 1:
            return "0" * len(pan)
        digest = hmac.new(self._key, pan.encode(), hashlib.sha256).digest()
        width = len(pan) - BIN_LENGTH - 1
        body = str(int.from_bytes(digest, "big") % 10**width).zfill(width)
        candidate = pan[:BIN_LENGTH] + body
        candidate += luhn_check_digit(candidate)
        if candidate == pan:  # one chance in 10**width: step the body, keep it deterministic
            body = str((int(body) + 1) % 10**width).zfill(width)
            candidate = pan[:BIN_LENGTH] + body
            candidate += luhn_check_digit(candidate)
        return candidate

    def message(self, message: Message, layout: Layout | None = None) -> Message:
        """`message` sanitized; `layout` is field 48's in the dialect it came in (where not
        known, the one layout field 48 reads in). A field 48 that does not read is dropped."""
        clean = message.copy()
        track_pan = pan_from_track2(message.get("35", "") or "")
        if track_pan and "2" not in clean:
            clean["2"] = track_pan
            expiry = message["35"][len(track_pan) + 1 : len(track_pan) + 5]
            if expiry.isdigit() and len(expiry) == 4 and "14" not in clean:
                clean["14"] = expiry
        for field in PAN_FIELDS & clean.fields.keys():
            clean[field] = self.test_pan(clean[field])
        for field in HIDDEN_FIELDS | ICC_FIELDS:  # chip data carries the card too: dropped
            clean.fields.pop(field, None)
        if "48" in clean:
            stripped = without_tag(clean["48"], CVV2_TAG, layout)
            if stripped:
                clean["48"] = stripped
            else:
                del clean.fields["48"]
        return clean

    def frame(self, dialect: Dialect, data: bytes) -> bytes | None:
        """A wire frame sanitized and re-framed (network header kept); None when it cannot be read, since
        an unreadable frame cannot be shown to be free of card data. Sanitized as the wire has it
        (the card data fields have the same numbers in ISO 8583:1993), so a 1993 capture keeps the
        fields and codes the switch's 1987 view would drop."""
        try:
            frame = unframe(dialect, data)
            clean = self.message(dialect.decode_wire(frame.payload), dialect.field48)
            return dialect.framing.frame(dialect.encode_wire(clean), frame.header)
        except (CaptureFormatError, FramingError, MessageDecodeError, MessageEncodeError):
            return None
