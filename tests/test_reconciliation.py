"""Acquirer reconciliation (0500/0510): a terminal's batch totals for a business date against
the journal's, on both journal stores."""

from __future__ import annotations

import datetime
import json

import pytest
import trio

from emulators.terminal import open_terminal
from processes import cardswitch
from switch.core.reconciliation import Totals, business_date_of, differences

pytestmark = pytest.mark.both_stores

APPROVE, EXPIRY = "4761730000000011", "3012"
DECLINED = "4761730000000029"  # 51 on a large amount


def test_field_15_names_the_date_nearest_the_business_date():
    new_year = datetime.date(2027, 1, 1)
    assert business_date_of("1231", new_year) == datetime.date(2026, 12, 31)
    assert business_date_of("0102", new_year) == datetime.date(2027, 1, 2)
    assert business_date_of("0230", new_year) is None and business_date_of("12a1", new_year) is None


def test_the_net_is_debits_less_credits_after_their_reversals():
    totals = Totals(debits=2, debits_amount=5000, debit_reversals=1, debit_reversals_amount=1000,
                    credits=1, credits_amount=6000)
    assert totals.fields()["97"] == "C" + "2000".zfill(16)
    assert totals.fields()["76"] == "0000000002" and totals.fields()["88"] == "0000000000005000"
    assert differences(totals, totals, "D" + "2000".zfill(16)) == ["97"]


async def test_a_batch_that_agrees_gets_00_and_one_that_differs_95_with_the_switch_totals(demo):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        for amount in (1000, 2000):
            assert (await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"] == "00"
        refund = terminal.card_request("0200", pan=APPROVE, amount=500, expiry=EXPIRY, processing_code="200000")
        assert (await terminal.send(refund))["39"] == "00"
        assert (await terminal.purchase(pan=DECLINED, amount=99999, expiry=EXPIRY))["39"] == "51"
        reversed_whole = terminal.card_request("0200", pan=APPROVE, amount=3000, expiry=EXPIRY)
        assert (await terminal.send(reversed_whole))["39"] == "00"
        assert (await terminal.reverse(reversed_whole))["39"] == "00"
        reversed_in_part = terminal.card_request("0200", pan=APPROVE, amount=4000, expiry=EXPIRY)
        assert (await terminal.send(reversed_in_part))["39"] == "00"
        partial = terminal.reversal_of(reversed_in_part)
        partial["95"] = f"{1500:012d}" + "0" * 30  # 15.00 stays: 25.00 taken off
        assert (await terminal.send(partial))["39"] == "00"
        assert (await terminal.reverse(reversed_whole))["39"] == "00"  # again: nothing more taken off

        today = demo.switch.business.field15
        expected = Totals(debits=4, debits_amount=10000, debit_reversals=2, debit_reversals_amount=5500,
                          credits=1, credits_amount=500)
        agreed = await terminal.send(terminal.reconciliation(today, expected.fields()))
        wrong = Totals(debits=3, debits_amount=10000, debit_reversals=2, debit_reversals_amount=5500,
                       credits=1, credits_amount=500)
        differed = await terminal.send(terminal.reconciliation(today, wrong.fields()))
        other_day = await terminal.send(terminal.reconciliation("0101" if today != "0101" else "0102", {}))
    assert (agreed.mti, agreed["39"], agreed["15"]) == ("0510", "00", today)
    assert expected.fields()["97"] == "D" + "4000".zfill(16)
    assert differed["39"] == "95"
    assert {field: differed[field] for field in expected.fields()} == expected.fields()  # the switch's own
    assert other_day["39"] == "00"  # nothing that day, nothing sent
    await demo.switch.journal.flush()
    reasons = [row[0] for row in demo.switch.journal.read(
        "SELECT reason FROM transactions WHERE mti = '0500' ORDER BY created_at")]
    assert reasons[1] == "terminal totals of " + demo.switch.business.date.isoformat() + " differ in field 76"


async def test_malformed_totals_get_30_naming_the_field(demo):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        bad_net = await terminal.send(terminal.reconciliation("1201", {"97": "X" + "0" * 16}))
        bad_date = await terminal.send(terminal.reconciliation("1340", {}))
        letters = await terminal.send(terminal.reconciliation("1201", {"76": "12345678AB"}))
    assert (bad_net["39"], bad_net["44"]) == ("30", "F97: C/D+16 digits")
    assert (bad_date["39"], bad_date["44"]) == ("30", "F15: MMDD expected")
    assert (letters["39"], letters["44"]) == ("30", "F76: 10 digits expected")


async def test_the_terminal_emulator_reconciles_its_batch(demo):
    target = f"127.0.0.1:{demo.ports['terminals']}"
    bought = await trio.to_thread.run_sync(lambda: cardswitch(
        "terminal", "purchase", "--target", target, "--tid", "TRECON01", "--pan", APPROVE, "--expiry", EXPIRY,
        "--amount", "12.50"))
    assert bought.returncode == 0, bought.stdout + bought.stderr
    agreed = await trio.to_thread.run_sync(lambda: cardswitch(
        "terminal", "reconcile", "--target", target, "--tid", "TRECON01", "--debits", "1:12.50", "--json"))
    differed = await trio.to_thread.run_sync(lambda: cardswitch(
        "terminal", "reconcile", "--target", target, "--tid", "TRECON01", "--debits", "2:25.00", "--json"))
    assert agreed.returncode == 0 and json.loads(agreed.stdout)["39"] == "00", agreed.stdout + agreed.stderr
    assert differed.returncode == 1 and json.loads(differed.stdout)["76"] == "0000000001"
    refused = cardswitch("terminal", "reconcile", "--debits", "lots")
    assert refused.returncode == 2 and "--debits: expected COUNT:AMOUNT" in refused.stderr
