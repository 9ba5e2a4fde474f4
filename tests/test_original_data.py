"""Field 90 as the switch writes it in the reversals and advices it sends an issuer: the original's
MTI, STAN, transmission time, its acquirer id zero-filled to 11 digits, and 11 zeros for the
forwarder, 42 digits in all; and it reads back as written."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switch.core.messages import OriginalData, reversal_advice
from switch.wire.message import Message


def digits(size: int):
    return st.text("0123456789", min_size=size, max_size=size)


@given(mti=st.sampled_from(["0100", "0200", "0220"]), stan=digits(6), transmitted=digits(10),
       acquirer=st.none() | st.text("0123456789", min_size=1, max_size=11))
def test_field_90_names_what_was_forwarded(mti, stan, transmitted, acquirer):
    fields = {"2": "4761730000000011", "3": "000000", "4": "000000001000", "7": transmitted, "11": stan}
    if acquirer is not None:
        fields["32"] = acquirer
    forwarded = Message(mti, fields)
    text = OriginalData.text_of(forwarded)
    assert len(text) == 42 and text.isdigit()
    assert OriginalData.parse(text) == OriginalData(mti, stan, transmitted, (acquirer or "0").zfill(11), "0" * 11)
    assert reversal_advice(forwarded)["90"] == text
