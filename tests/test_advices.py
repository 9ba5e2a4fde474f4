"""Advices (0120, 0220, 0420/0421) and repeats (0101, 0201, 0401) from terminals, end to end over
loopback sockets: answered at once, never declined, delivered to the issuer through SAF."""

from __future__ import annotations

from conftest import make_bank, start_issuer, until
from tools.load.processes import free_port
from emulators.terminal import open_terminal
from test_journal import invariants_hold, journal_rows, start_switch

APPROVE = "4761730000000011"
EXPIRY = "3012"
CARD_PRESENT = {"52": "8F3A5C7E91B2D4F6", "55": "9F2608C1D2E3F4A5B6C7D8", "48": "0203ABC9203731"}


async def delivered(condition, timeout: float = 5) -> None:
    """Wait until SAF has delivered what `condition` checks for."""
    await until(condition, timeout)


def saf_rows(data_dir):
    return [(r["kind"], r["mti"], r["status"]) for r in journal_rows(data_dir, "SELECT * FROM saf ORDER BY id")]


async def test_financial_advice_is_accepted_and_reaches_the_issuer_without_card_present_data(demo, tmp_path):
    bank = demo.issuers["bank_a"][1]
    account = bank.accounts[APPROVE]
    before = account.balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        advice = terminal.card_request("0220", track2=f"{APPROVE}={EXPIRY}1011234500000", amount=2500,
                                       extra=CARD_PRESENT)
        response = await terminal.send(advice)
    assert (response.mti, response["39"], response["11"]) == ("0230", "00", advice["11"])
    await delivered(lambda: bank.advised)
    received = bank.advised[0]
    assert received.mti == "0220" and received["2"] == APPROVE and received["32"] == "100001"
    assert not {"35", "52", "55"} & set(received.fields) and received["48"] == "0203ABC"  # CVV2 gone
    assert account.balance == before - 2500
    await delivered(lambda: not demo.switch.saf.pending("bank_a"))
    await demo.switch.journal.flush()
    row = journal_rows(tmp_path / "data")[0]
    assert (row["mti"], row["rc"], row["state"], row["issuer"]) == ("0220", "00", "approved", "bank_a")
    assert saf_rows(tmp_path / "data") == [("acquirer_advice", "0220", "acknowledged")]
    assert invariants_hold(tmp_path / "data") == []


async def test_reversal_advice_reverses_an_approved_purchase_and_a_repeat_does_nothing_more(demo, tmp_path):
    bank = demo.issuers["bank_a"][1]
    account = bank.accounts[APPROVE]
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=1800, expiry=EXPIRY)
        advice = terminal.reversal_of(purchase, "0420")
        before = account.balance
        assert (await terminal.send(purchase))["39"] == "00"
        first = await terminal.send(advice)
        await delivered(lambda: account.balance == before)
        retransmitted = advice.copy()
        retransmitted.mti = "0421"  # the terminal got no answer: same STAN and time
        answers = [await terminal.send(retransmitted), await terminal.send(terminal.reversal_of(purchase, "0421"))]
    assert [(a.mti, a["39"]) for a in (first, *answers)] == [("0430", "00")] * 3
    # anything queued (a reversal is queued before it is answered) has reached the issuer once SAF is empty
    await delivered(lambda: not demo.switch.saf.pending("bank_a"))
    assert account.balance == before and len(bank.reversals) == 1
    await demo.switch.journal.flush()
    rows = journal_rows(tmp_path / "data")
    assert [(r["mti"], r["state"]) for r in rows] == [
        ("0200", "reversed"), ("0420", "approved"), ("0420", "duplicate"), ("0420", "approved")]
    assert rows[3]["reason"] == "original reversed: not forwarded"
    assert saf_rows(tmp_path / "data") == [("reversal", "0420", "acknowledged")]


async def test_reversal_advice_of_an_unknown_original_is_accepted_journaled_and_advised(demo, tmp_path):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        ghost = terminal.card_request("0200", pan=APPROVE, amount=900, expiry=EXPIRY)  # never sent
        response = await terminal.send(terminal.reversal_of(ghost, "0420"))
    assert (response.mti, response["39"]) == ("0430", "00")
    await delivered(lambda: not demo.switch.saf.pending("bank_a"))
    await demo.switch.journal.flush()
    row = journal_rows(tmp_path / "data")[0]
    assert (row["state"], row["issuer"], row["reason"]) == (
        "approved", "bank_a", "original not found: advised to the card's issuer")
    assert saf_rows(tmp_path / "data") == [("acquirer_advice", "0420", "acknowledged")]


async def test_repeat_of_an_answered_purchase_is_answered_from_the_first_without_a_second_debit(demo, tmp_path):
    account = demo.issuers["bank_a"][1].accounts[APPROVE]
    before = account.balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=600, expiry=EXPIRY)
        first = await terminal.send(purchase)
        repeat = purchase.copy()
        repeat.mti = "0201"
        again = await terminal.send(repeat)
        unknown = await terminal.send(terminal.card_request("0201", pan=APPROVE, amount=400, expiry=EXPIRY))
    assert (again.mti, again["39"], again["38"]) == ("0210", "00", first["38"])
    assert (unknown.mti, unknown["39"]) == ("0210", "00")  # no first known: processed as an 0200
    assert account.balance == before - 600 - 400
    await demo.switch.journal.flush()
    assert [(r["mti"], r["state"]) for r in journal_rows(tmp_path / "data")] == [
        ("0200", "approved"), ("0200", "duplicate"), ("0200", "approved")]


async def test_advices_while_the_issuer_is_down_are_delivered_when_it_returns(nursery, tmp_path):
    port = free_port()
    settings = "[switch.saf]\nbackoff_min_ms = 20\nbackoff_max_ms = 50\n"
    issuer = {"port": port, "reconnect_min_ms": 20, "reconnect_max_ms": 50}
    switch, switch_port = await start_switch(nursery, tmp_path, issuer, settings=settings)
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        completion = await terminal.send(terminal.card_request("0220", pan=APPROVE, amount=3000, expiry=EXPIRY))
        authorisation = await terminal.send(terminal.card_request("0120", pan=APPROVE, amount=100, expiry=EXPIRY))
    assert [(a.mti, a["39"]) for a in (completion, authorisation)] == [("0230", "00"), ("0130", "00")]
    assert switch.saf.pending("bank") == 2

    bank = make_bank({"pan": APPROVE})
    await start_issuer(nursery, bank, port)
    await delivered(lambda: not switch.saf.pending("bank"))
    assert [m.mti for m in bank.advised] == ["0220", "0120"]
    assert bank.accounts[APPROVE].balance == 100000 - 3000  # the 0120 only informs
    await switch.journal.flush()
    assert [(kind, status) for kind, _, status in saf_rows(tmp_path / "data")] == [
        ("acquirer_advice", "acknowledged")] * 2
    assert invariants_hold(tmp_path / "data") == []


async def test_advices_missing_a_mandatory_field_get_30_and_unroutable_ones_15(demo, tmp_path):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        no_currency = terminal.card_request("0220", pan=APPROVE, amount=100, expiry=EXPIRY)
        del no_currency.fields["49"]
        no_original = terminal.reversal_of(terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY),
                                           "0420")
        del no_original.fields["90"]
        malformed = terminal.card_request("0120", pan=APPROVE, amount=100, expiry=EXPIRY)
        malformed["7"] = "NOTADATE!!"
        unroutable = terminal.card_request("0220", pan="3700000000000007", amount=100, expiry=EXPIRY)
        answers = [await terminal.send(m) for m in (no_currency, no_original, malformed, unroutable)]
    assert [(a.mti, a["39"]) for a in answers] == [("0230", "30"), ("0430", "30"), ("0130", "30"), ("0230", "15")]
    await demo.switch.journal.flush()
    assert saf_rows(tmp_path / "data") == []
