"""Card data that disagrees with itself is refused, not guessed at (fail closed): a request that
carries track 2 (field 35) beside a PAN (field 2) or an expiry date (field 14) must carry the
same card in both, and its track 2 must be one (a PAN, a separator, YYMM and a service code).
Otherwise 30, naming the fields and never their values: the switch cannot know which of the two
the cardholder presented, and the checks after this one (CVV, stand-in, the issuer's) would each
look at a different card."""

from __future__ import annotations

from switch.core.codes import RC
from switch.core.context import Answer, Context
from switch.core.states import State
from switch.wire.track2 import Track2


def check_card_data_agrees(ctx: Context) -> Answer | None:
    fields = ctx.request.fields
    track2 = fields.get("35")
    if track2 is None:
        return None
    track = Track2.parse(track2)
    if track is None:
        return _refused("field 35: not a track 2 (PAN, separator, YYMM, service code)", "F35: not a track 2")
    if "2" in fields and fields["2"] != track.pan:
        return _refused("fields 2 and 35: different cards", "F2/F35: different cards")
    if "14" in fields and fields["14"] != track.expiry:
        return _refused("fields 14 and 35: different expiry dates", "F14/F35: different expiry")
    return None


def _refused(reason: str, brief: str) -> Answer:
    return Answer(RC.FORMAT_ERROR, State.REJECTED, reason, extra={"44": brief})
