"""Fail closed on card data that disagrees with itself: track 2 against fields 2 and 14."""

from __future__ import annotations

import pytest

from conftest import journal_rows
from emulators.terminal import open_terminal

APPROVE = "4761730000000011"
OTHER = "4761730000000029"
TRACK2 = f"{APPROVE}=30121010000000000000"


@pytest.mark.parametrize("card, reason", [
    ({"pan": APPROVE, "track2": f"{OTHER}=30121010000000000000"}, "fields 2 and 35: different cards"),
    ({"pan": APPROVE, "expiry": "2912", "track2": TRACK2}, "fields 14 and 35: different expiry dates"),
    ({"pan": APPROVE, "track2": "GARBAGE"}, "field 35: not a track 2 (PAN, separator, YYMM, service code)"),
    ({"track2": f"{APPROVE}=30"}, "field 35: not a track 2 (PAN, separator, YYMM, service code)"),
])
async def test_track_2_that_disagrees_with_the_request_gets_30_naming_the_fields(demo, tmp_path, card, reason):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        response = await terminal.purchase(amount=100, **card)
    assert response["39"] == "30" and "38" not in response
    await demo.switch.journal.flush()
    row = journal_rows(tmp_path / "data")[-1]
    assert (row["state"], row["reason"], row["issuer"]) == ("rejected", reason, None)  # never forwarded
    assert OTHER not in row["reason"] and APPROVE not in row["reason"]


async def test_track_2_that_agrees_with_fields_2_and_14_goes_on(demo):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        response = await terminal.purchase(pan=APPROVE, expiry="3012", amount=100, track2=TRACK2)
    assert response["39"] == "00"
