"""`without`: what a reversal, an advice or the duplicate window keeps of a message is exactly the
message less the fields the table withholds, in the message's order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switch.core.fields import NOT_IN_ADVICES, without

keys = st.integers(2, 128).map(str)


@given(fields=st.dictionaries(keys, st.text(max_size=5)), dropped=st.frozensets(keys))
def test_without_keeps_the_rest_in_order(fields, dropped):
    kept = without(fields, dropped)
    assert list(kept.items()) == [(field, value) for field, value in fields.items() if field not in dropped]
    assert kept is not fields


def test_card_present_secrets_never_reach_an_advice():
    fields = {"2": "4761730000000011", "35": "4761730000000011=3012", "52": "0123456789ABCDEF", "4": "000000000100"}
    assert without(fields, NOT_IN_ADVICES) == {"2": "4761730000000011", "4": "000000000100"}
