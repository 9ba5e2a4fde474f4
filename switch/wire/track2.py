"""Track 2 (field 35) as a value: PAN, separator, expiry YYMM, service code, discretionary data.

One parser for every step that reads a track 2: the card-data check that refuses a track 2 that
is none, and the CVV/iCVV check that reads the CVV out of its discretionary data.
"""

from __future__ import annotations

import attrs

from switch.wire.masking import pan_from_track2

TRACK2_CVV_OFFSET = 5  # in the discretionary data, after PVKI (1) and PVV (4): Visa's usual layout


@attrs.frozen
class Track2:
    pan: str
    expiry: str
    service_code: str
    discretionary: str

    @classmethod
    def parse(cls, track2: str) -> Track2 | None:
        """The track, or None when it is not one (no PAN before a separator, or fewer than the
        seven digits of expiry and service code after it)."""
        pan = pan_from_track2(track2)
        if pan is None:
            return None
        rest = track2[len(pan) + 1:]
        if len(rest) < 7 or not rest[:7].isdigit():
            return None
        return cls(pan, rest[:4], rest[4:7], rest[7:])

    @property
    def cvv(self) -> str | None:
        value = self.discretionary[TRACK2_CVV_OFFSET:TRACK2_CVV_OFFSET + 3]
        return value if len(value) == 3 and value.isdigit() else None
