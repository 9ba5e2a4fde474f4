"""Settlement: a business date's movements as net positions (`cardswitch settle`) and as the
issuers' settlement files written at cutover, on both journal stores."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest
import trio
from hypothesis import given, strategies as st

from conftest import read_events, refund_and_partial_reversal
from emulators.terminal import open_terminal
from processes import cardswitch
from switch.admin import answer
from switch.settlement import shown

pytestmark = pytest.mark.both_stores

APPROVE, OTHER_BANK, EXPIRY = "4761730000000011", "5200000000000015", "3012"


@given(st.integers(min_value=-10**15, max_value=10**15), st.integers(min_value=0, max_value=3))
def test_amounts_are_shown_exactly_with_the_currency_exponent(amount, exponent):
    assert Decimal(shown(amount, exponent)) == Decimal(amount).scaleb(-exponent)


async def test_cutover_writes_each_issuers_file_and_settle_shows_the_net_positions(demo, tmp_path, log_file,
                                                                                  journal_url):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        for amount in (1000, 2500):
            assert (await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"] == "00"
        # 30.00 of the 40.00 purchase taken off
        await refund_and_partial_reversal(terminal, APPROVE, EXPIRY, refund=300, bought=4000, kept=1000)
        assert (await terminal.purchase(pan=OTHER_BANK, amount=700, expiry=EXPIRY))["39"] == "00"
        assert (await terminal.authorize(pan=APPROVE, amount=9999, expiry=EXPIRY))["39"] == "00"  # moves nothing
    day = demo.switch.business.date.isoformat()
    await answer(demo.switch, "cutover")
    with trio.fail_after(10):
        while not [e for e in read_events(log_file) if e["event"] == "settlement_files_written"]:
            await trio.sleep(0.05)
    folder = tmp_path / "data" / "settlement" / day
    assert sorted(path.name for path in folder.iterdir()) == ["bank_a.csv", "bank_b.csv"]
    lines = list(csv.reader((folder / "bank_a.csv").read_text().splitlines()))
    assert lines[0][0] == "H" and lines[-1] == ["T", "5", str(1000 + 2500 + 300 + 4000 + 3000)]
    assert [(line[3], line[8]) for line in lines[1:-1]] == [
        ("debit", "1000"), ("debit", "2500"), ("credit", "300"), ("debit", "4000"), ("reversal", "3000")]

    where = ["--journal", journal_url] if journal_url else ["--data-dir", str(tmp_path / "data")]
    settled = await trio.to_thread.run_sync(lambda: cardswitch("settle", *where, "--date", day, "--json"))
    assert settled.returncode == 0, settled.stderr
    rows = [json.loads(line) for line in settled.stdout.splitlines()]
    bank_a = next(row for row in rows if (row["by"], row["name"]) == ("issuer", "bank_a"))
    assert {key: bank_a[key] for key in ("currency", "exponent", "approvals", "approved_amount", "reversals",
                                         "reversed_amount", "refunds", "refunded_amount", "net_amount")} == {
        "currency": "978", "exponent": 2, "approvals": 3, "approved_amount": 7500, "reversals": 1,
        "reversed_amount": 3000, "refunds": 1, "refunded_amount": 300, "net_amount": 4200}
    terminal_row = next(row for row in rows if row["by"] == "terminal")
    assert terminal_row["net_amount"] == 4200 + 700
    table = await trio.to_thread.run_sync(lambda: cardswitch("settle", *where, "--date", day))
    assert "42.00" in table.stdout and "49.00" in table.stdout


def test_settle_refuses_a_date_that_is_no_date(tmp_path):
    done = cardswitch("settle", "--data-dir", str(tmp_path), "--date", "2026-13-01")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--date: expected" in done.stderr
