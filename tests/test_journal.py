"""Lose nothing: journal, duplicates, reversals, late responses, SAF, stand-in, link health,
graceful shutdown — in process, over real loopback sockets and a real SQLite journal."""

from __future__ import annotations

import sqlite3
import time
from functools import partial

import attrs
import trio

from conftest import journal_rows, make_bank, read_events, start_issuer, until, write_config
from tools.load.processes import free_port
from emulators.bank import Fault
from emulators.terminal import open_terminal
from switch import audit
from switch.config import load_config
from switch.journal import DB_FILE
from switch.core.standin import StandIn, StandInLimits
from switch.core.messages import acquirer_advice
from switch.service import Switch, utc_today
from switch.wire.dialect import load_dialect

APPROVE = "4761730000000011"
EXPIRY = "3012"


def invariants_hold(data_dir) -> list[str]:
    with sqlite3.connect(data_dir / DB_FILE) as connection:
        return audit.check(connection, data_dir)


async def start_switch(nursery, tmp_path, issuer: dict, routes=None, settings: str = "") -> tuple[Switch, int]:
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", **issuer}],
                          routes=routes or [{"prefix": "4", "issuer": "bank"}])
    if settings:
        config.write_text(settings + "\n" + config.read_text())
    switch = Switch(load_config(config, data_dir=tmp_path / "data"))
    ports = await nursery.start(switch.run)
    return switch, ports["terminals"]


async def test_every_request_is_journaled_without_card_data(demo, tmp_path):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY)
        await terminal.purchase(pan="4761730000000029", amount=99999, expiry=EXPIRY)
        await terminal.purchase(pan="3700000000000007", amount=100, expiry=EXPIRY)
        await terminal.echo()
    await demo.switch.journal.flush()
    rows = journal_rows(tmp_path / "data")
    assert [(r["mti"], r["rc"], r["state"]) for r in rows] == [
        ("0200", "00", "approved"), ("0200", "51", "declined"), ("0200", "15", "rejected"), ("0800", "00", "approved")]
    first = rows[0]
    assert first["pan_masked"] == "476173******0011" and len(first["pan_hash"]) == 64
    assert first["issuer"] == "bank_a" and first["approval"] and first["latency_ms"] >= 0
    assert first["tid"] == "T0000001" and first["amount"] == 100 and first["currency"] == "978"
    assert invariants_hold(tmp_path / "data") == []


async def test_retransmission_is_answered_from_the_journal_and_not_forwarded(demo):
    account = demo.issuers["bank_a"][1].accounts[APPROVE]
    before = account.balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        request = terminal.card_request("0200", pan=APPROVE, amount=700, expiry=EXPIRY)
        first = await terminal.send(request)
        again = await terminal.send(request.copy())
        changed = request.copy()
        changed["4"] = "000000000701"
        conflicting = await terminal.send(changed)
    assert first["39"] == again["39"] == "00" and again["38"] == first["38"]
    assert account.balance == before - 700  # debited once
    assert conflicting["39"] == "94"


async def test_burst_of_retransmissions_while_the_original_is_in_flight(demo, tmp_path):
    """bank_c answers this card after 0.8 s; ten retransmissions all get that one answer."""
    account = demo.issuers["bank_c"][1].accounts["6011000000000038"]
    before = account.balance
    answers = []
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        request = terminal.card_request("0200", pan="6011000000000038", amount=300, expiry=EXPIRY)
        async with trio.open_nursery() as nursery:
            async def send():
                answers.append(await terminal.send(request.copy()))
            nursery.start_soon(send)
            await until(lambda: demo.switch.links["bank_c"].in_flight)
            for _ in range(10):
                nursery.start_soon(send)
    assert [a["39"] for a in answers] == ["00"] * 11
    assert len({a["38"] for a in answers}) == 1
    assert account.balance == before - 300
    await demo.switch.journal.flush()
    states = [r["state"] for r in journal_rows(tmp_path / "data")]
    assert states.count("duplicate") == 10 and states.count("approved") == 1


async def test_reversal_matched_by_field_90_credits_the_issuer_once(demo):
    bank = demo.issuers["bank_a"][1]
    account = bank.accounts[APPROVE]
    before = account.balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
        first = await terminal.reverse(purchase)
        second = await terminal.reverse(purchase)  # already reversed: answered, not forwarded
    assert (first.mti, first["39"], second["39"]) == ("0410", "00", "00")
    assert account.balance == before
    assert len(bank.reversals) == 1


async def test_reversal_of_unknown_original_gets_25_and_of_a_decline_is_not_forwarded(demo):
    bank = demo.issuers["bank_a"][1]
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        ghost = terminal.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        unknown = await terminal.reverse(ghost)  # never sent
        declined = terminal.card_request("0200", pan="4761730000000029", amount=99999, expiry=EXPIRY)
        assert (await terminal.send(declined))["39"] == "51"
        of_decline = await terminal.reverse(declined)
    assert unknown["39"] == "25"
    assert of_decline["39"] == "00"
    assert bank.reversals == set()


async def test_reversal_by_rrn_when_field_90_is_zero_filled_and_partial_reversal(demo, tmp_path):
    account = demo.issuers["bank_a"][1].accounts[APPROVE]
    before = account.balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=2000, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
        reversal = terminal.reversal_of(purchase)
        reversal["90"] = "0" * 42
        reversal["95"] = "000000000500" + "0" * 30  # the sale is now 5.00 of 20.00
        answer = await terminal.send(reversal)
    assert answer["39"] == "00"
    assert account.balance == before - 500
    await demo.switch.journal.flush()
    original = journal_rows(tmp_path / "data")[0]
    assert (original["state"], original["reversed_amount"]) == ("partially_reversed", 1500)


async def test_a_timed_out_request_is_reversed_at_once_and_its_late_approval_takes_nothing(nursery, tmp_path, log_file):
    """The issuer approves after the switch gave up: the reversal sent when the request timed
    out (which may overtake the approval) leaves the account as the terminal's 91 says."""
    bank = make_bank({"pan": APPROVE, "latency_ms": 300})
    account = bank.accounts[APPROVE]
    issuer_port = await start_issuer(nursery, bank)
    switch, port = await start_switch(nursery, tmp_path, {"port": issuer_port, "timeout_ms": 100})
    await switch.wait_links_up()
    async with open_terminal("127.0.0.1", port) as terminal:
        response = await terminal.purchase(pan=APPROVE, amount=4000, expiry=EXPIRY)
    assert response["39"] == "91"
    await until(lambda: switch.links["bank"].unmatched and not switch.saf.pending("bank"))
    await switch.journal.flush()
    assert account.balance == 100000
    row = journal_rows(tmp_path / "data")[0]
    assert (row["state"], row["late_rc"]) == ("timed_out", "00")
    saf = journal_rows(tmp_path / "data", "SELECT * FROM saf")
    assert [(s["kind"], s["mti"], s["status"]) for s in saf] == [("timeout_reversal", "0420", "acknowledged")]
    assert invariants_hold(tmp_path / "data") == []


STAND_IN = {"max_amount": 5000, "daily_count": 2, "daily_amount": 8000, "processing_codes": ["00"]}


def stand_in_issuer(port: int) -> dict:
    return {"port": port, "reconnect_min_ms": 20, "reconnect_max_ms": 50, "stand_in": STAND_IN}


async def test_stand_in_approves_within_limits_and_advises_the_issuer_when_it_returns(nursery, tmp_path):
    port = free_port()
    settings = "[switch.saf]\nbackoff_min_ms = 20\nbackoff_max_ms = 50\n"
    switch, switch_port = await start_switch(nursery, tmp_path, stand_in_issuer(port), settings=settings)
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        first = await terminal.purchase(pan=APPROVE, amount=3000, expiry=EXPIRY)
        too_big = await terminal.purchase(pan=APPROVE, amount=6000, expiry=EXPIRY)
        cash = await terminal.send(terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY,
                                                         processing_code="010000"))
        second = await terminal.purchase(pan=APPROVE, amount=4000, expiry=EXPIRY)
        over_daily = await terminal.purchase(pan=APPROVE, amount=2000, expiry=EXPIRY)
    assert first["39"] == "00" and first["38"].startswith("S")
    assert (too_big["39"], cash["39"], second["39"]) == ("61", "57", "00")
    assert over_daily["39"] == "65"  # third approval of the day for this card
    assert switch.saf.pending("bank") == 2

    bank = make_bank({"pan": APPROVE})
    await start_issuer(nursery, bank, port)
    await until(lambda: not switch.saf.pending("bank"))
    assert bank.accounts[APPROVE].balance == 100000 - 7000
    await switch.journal.flush()
    saf = journal_rows(tmp_path / "data", "SELECT * FROM saf ORDER BY id")
    assert [(s["kind"], s["status"], s["response_code"]) for s in saf] == [
        ("stand_in_advice", "acknowledged", "00")] * 2
    reasons = [r["reason"] for r in journal_rows(tmp_path / "data")]
    assert "issuer unavailable; stand-in: amount over the per-transaction limit" in reasons
    assert invariants_hold(tmp_path / "data") == []


async def test_advices_of_requests_no_terminal_was_answered_are_withdrawn_at_the_next_start(
        nursery, tmp_path, log_file):
    """A kill between an advice's durable SAF item and its request's answer row: the stand-in
    approval no terminal saw must never reach the issuer. Two such crashes are made from real
    stand-in approvals by undoing what the answer wrote: one row never written (a request
    answered without reaching an issuer is written only with its answer), one left pending."""
    port = free_port()
    settings = "[switch.saf]\nbackoff_min_ms = 20\nbackoff_max_ms = 50\n"
    issuer = {**stand_in_issuer(port), "stand_in": {**STAND_IN, "daily_count": 3}}
    first, switch_port = await start_switch(nursery, tmp_path, issuer, settings=settings)
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        for amount in (1000, 2000, 3000):
            assert (await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"] == "00"
    first.shutdown()
    with trio.fail_after(5):
        await first.stopped.wait()
    data = tmp_path / "data"
    with sqlite3.connect(data / DB_FILE) as connection:
        traces = [row[0] for row in connection.execute("SELECT trace FROM transactions ORDER BY trace")]
        connection.execute("DELETE FROM transactions WHERE trace = ?", (traces[0],))
        connection.execute("UPDATE transactions SET state = 'pending', rc = NULL WHERE trace = ?", (traces[1],))

    bank = make_bank({"pan": APPROVE})
    await start_issuer(nursery, bank, port)
    second, _ = await start_switch(nursery, tmp_path, issuer, settings=settings)
    await until(lambda: not second.saf.pending("bank"))
    await second.journal.flush()
    assert bank.accounts[APPROVE].balance == 100000 - 3000  # only the advice of the answered request
    saf = journal_rows(data, "SELECT trace, status FROM saf ORDER BY id")
    assert [(row["trace"], row["status"]) for row in saf] == [
        (traces[0], "withdrawn"), (traces[1], "withdrawn"), (traces[2], "acknowledged")]
    recovered = [e for e in read_events(log_file) if e["event"] == "journal_recovered"]
    assert [(e["withdrawn"], e["never_sent"]) for e in recovered] == [(2, 1)]
    assert invariants_hold(data) == []


async def test_an_advice_of_an_answer_waits_for_that_answer_to_be_committed(nursery, tmp_path):
    """What an advice tells the issuer (a terminal's offline approval, a stand-in approval) goes
    only once the terminal's answer is on disk; one whose request ended otherwise never goes."""
    bank = make_bank({"pan": APPROVE})
    switch, switch_port = await start_switch(nursery, tmp_path, {"port": await start_issuer(nursery, bank)})
    await switch.wait_links_up()
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        advices = [acquirer_advice(terminal.card_request("0220", pan=APPROVE, amount=amount, expiry=EXPIRY), None)
                   for amount in (1500, 2500)]
    for trace, advice in zip((900001, 900002), advices):
        await switch.saf.enqueue("bank", trace, "acquirer_advice", advice)
    await trio.sleep(0.3)
    assert bank.accounts[APPROVE].balance == 100000 and switch.saf.pending("bank") == 2  # held
    switch.saf.release(900001)
    switch.saf.withdraw(900002)
    await until(lambda: not switch.saf.pending("bank"))
    await switch.journal.flush()
    assert bank.accounts[APPROVE].balance == 100000 - 1500
    saf = journal_rows(tmp_path / "data", "SELECT trace, status FROM saf ORDER BY id")
    assert [(row["trace"], row["status"]) for row in saf] == [(900001, "acknowledged"), (900002, "withdrawn")]


async def test_a_reversed_stand_in_approval_gives_the_card_its_allowance_back(nursery, tmp_path):
    """Daily stand-in limit of 2 approvals and 80.00: a reversed one no longer counts."""
    switch, switch_port = await start_switch(nursery, tmp_path, stand_in_issuer(free_port()))
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        first = terminal.card_request("0200", pan=APPROVE, amount=5000, expiry=EXPIRY)
        assert (await terminal.send(first))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=3000, expiry=EXPIRY))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "65"
        assert (await terminal.reverse(first))["39"] == "00"
        again = await terminal.purchase(pan=APPROVE, amount=5000, expiry=EXPIRY)
    assert again["39"] == "00" and again["38"].startswith("S")


async def test_a_late_approval_after_a_stand_in_decline_is_reversed_and_the_link_stays_up(nursery, tmp_path,
                                                                                         log_file):
    """The issuer times out, stand-in declines (over its limit), then the issuer's approval
    arrives: the cardholder was told 61, so the approval is reversed at the issuer."""
    bank = make_bank({"pan": APPROVE, "latency_ms": 400})
    issuer = {"port": await start_issuer(nursery, bank), "timeout_ms": 150,
              "stand_in": {"max_amount": 1000, "daily_count": 5, "daily_amount": 5000}}
    switch, switch_port = await start_switch(nursery, tmp_path, issuer)
    await switch.wait_links_up()
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=4000, expiry=EXPIRY))["39"] == "61"
    await until(lambda: switch.links["bank"].unmatched and not switch.saf.pending("bank"))
    assert bank.accounts[APPROVE].balance == 100000
    assert "link_down" not in [e["event"] for e in read_events(log_file)]


async def test_a_reversal_after_the_window_reverses_the_first_transmission_not_its_retransmission(
        nursery, tmp_path, virtual_clock):
    """Out of memory, the original is found in the journal, where its retransmission (journaled
    as a duplicate) has the same keys: the one the issuer approved is the one reversed. The
    window is the default ten minutes, on trio's clock."""
    bank = make_bank({"pan": APPROVE})
    switch, switch_port = await start_switch(nursery, tmp_path, {"port": await start_issuer(nursery, bank)})
    await switch.wait_links_up()
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
        assert (await terminal.send(purchase))["39"] == "00"  # a retransmission, answered from the first
    virtual_clock.jump(601)  # the window (600 s) has forgotten both (and the idle connection is closed)
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        assert (await terminal.reverse(purchase))["39"] == "00"
    await switch.journal.flush()
    assert [r["state"] for r in journal_rows(tmp_path / "data")] == ["reversed", "duplicate", "approved"]
    assert bank.accounts[APPROVE].balance == 100000


async def test_a_stand_in_approval_reversed_in_two_steps_is_released_once_whole(nursery, tmp_path):
    """One stand-in approval a day: 50.00, partly reversed to 30.00 (still counts), then reversed
    in full (no longer counts): the card may be stood in for again."""
    limits = {"max_amount": 5000, "daily_count": 1, "daily_amount": 5000}
    switch, switch_port = await start_switch(nursery, tmp_path, {"port": free_port(), "stand_in": limits})
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        first = terminal.card_request("0200", pan=APPROVE, amount=5000, expiry=EXPIRY)
        assert (await terminal.send(first))["39"] == "00"
        partial = terminal.reversal_of(first)
        partial["95"] = f"{3000:012d}" + "0" * 30
        assert (await terminal.send(partial))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "65"
        assert (await terminal.reverse(first))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=4000, expiry=EXPIRY))["39"] == "00"


def test_releasing_a_stand_in_approval_from_an_earlier_day_leaves_today_alone():
    limits = StandInLimits(max_amount=5000, daily_count=1, daily_amount=5000)
    stand_in = StandIn(utc_today)
    assert stand_in.decide(limits, "bank", "card", "000000", None, 100).approved
    stand_in.release("bank", "card", 100, True, approved_at=time.time() - 86400)  # yesterday's
    assert stand_in.decide(limits, "bank", "card", "000000", None, 100).code == "65"


async def test_a_failing_saf_item_is_parked_without_blocking_the_others(nursery, tmp_path, log_file):
    """The issuer never answers advices of 44.44; that one is parked, the rest are delivered."""
    port = free_port()
    settings = "[switch.saf]\nretry_limit = 3\nbackoff_min_ms = 20\nbackoff_max_ms = 40\n"
    issuer = {**stand_in_issuer(port), "timeout_ms": 200}
    switch, switch_port = await start_switch(nursery, tmp_path, issuer, settings=settings)
    async with open_terminal("127.0.0.1", switch_port) as terminal:
        for amount in (4444, 1000):
            assert (await terminal.purchase(pan=APPROVE, amount=amount, expiry=EXPIRY))["39"] == "00"
    bank = make_bank({"pan": APPROVE})
    bank.rules[4444] = Fault(action="no_reply", mtis=frozenset({"0220", "0221"}))
    await start_issuer(nursery, bank, port)
    await until(lambda: not switch.saf.pending("bank"))
    await switch.journal.flush()
    saf = journal_rows(tmp_path / "data", "SELECT * FROM saf ORDER BY id")
    assert [(s["status"], s["attempts"]) for s in saf] == [("parked", 3), ("acknowledged", 1)]
    assert [e["saf_id"] for e in read_events(log_file) if e["event"] == "saf_parked"] == [saf[0]["id"]]


async def silent_server(nursery) -> int:
    """A TCP peer that accepts and never answers: an issuer that hangs."""
    async def hang(stream):
        async with stream:
            await trio.sleep_forever()
    listeners = await nursery.start(partial(trio.serve_tcp, hang, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


async def test_link_is_dropped_after_missed_echoes(nursery, tmp_path, log_file, virtual_clock):
    """An issuer that stops answering: echoes after 30 s of silence, each waiting its 5 s."""
    port = await silent_server(nursery)
    switch, _ = await start_switch(nursery, tmp_path, {"port": port, "echo_interval_ms": 30000,
                                                        "max_missed_echoes": 2, "reconnect_min_ms": 60000})
    await switch.wait_links_up()
    started = trio.current_time()
    while not [e for e in read_events(log_file) if e["event"] == "link_down"]:
        await trio.sleep(1)
    # First echo after 30 s of silence, missed at 35 s; the second 30 s later, missed at 70 s.
    assert 70 <= trio.current_time() - started < 72
    assert [e["reason"] for e in read_events(log_file) if e["event"] == "link_down"] == ["2 echoes missed"]
    assert [e["missed"] for e in read_events(log_file) if e["event"] == "link_echo_missed"][:2] == [1, 2]


async def test_sign_on_is_required_before_the_link_takes_traffic(nursery, tmp_path, log_file):
    silent = await silent_server(nursery)
    switch, port = await start_switch(nursery, tmp_path, {"port": silent, "sign_on": True, "timeout_ms": 100})
    async with open_terminal("127.0.0.1", port) as terminal:
        await until(lambda: any(e.get("reason") == "no answer to sign-on" for e in read_events(log_file)
                                if e["event"] == "link_down"))
        started = trio.current_time()
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "91"
        assert trio.current_time() - started < 0.1  # not up: 91 at once, no waiting for a timeout
    assert any(e.get("reason") == "no answer to sign-on" for e in read_events(log_file) if e["event"] == "link_down")


async def test_graceful_shutdown_finishes_in_flight_work_and_flushes_the_journal(demo, tmp_path, log_file):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        async with trio.open_nursery() as nursery:
            answers = []

            async def slow_purchase():
                answers.append(await terminal.purchase(pan="6011000000000038", amount=100, expiry=EXPIRY))

            nursery.start_soon(slow_purchase)
            await until(lambda: demo.switch.in_flight)
            demo.switch.shutdown()
            await until(lambda: "shutdown_draining" in [e["event"] for e in read_events(log_file)])  # listeners closed
            try:
                await trio.open_tcp_stream("127.0.0.1", demo.ports["terminals"])
                accepted_new = True
            except OSError:
                accepted_new = False
    assert answers[0]["39"] == "00" and not accepted_new
    await until(demo.switch.stopped.is_set)  # a deadline on the real clock: the journal flushes
    assert [r["state"] for r in journal_rows(tmp_path / "data")] == ["approved"]


async def test_a_graceful_stop_waits_for_an_answer_held_by_its_journal_commit(demo, tmp_path, log_file):
    """The issuer has answered, the outcome's commit waits on a journal locked by another
    process: the request is still in flight, and a stop lets it finish and answer."""
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        async with trio.open_nursery() as nursery:
            answers = []

            async def slow_purchase():
                answers.append(await terminal.purchase(pan="6011000000000038", amount=100, expiry=EXPIRY))

            nursery.start_soon(slow_purchase)  # bank_c answers it after 0.8 s
            await until(lambda: journal_rows(tmp_path / "data", "SELECT * FROM transactions WHERE sent_at IS NOT NULL"))
            with sqlite3.connect(tmp_path / "data" / DB_FILE) as locker:
                locker.execute("BEGIN IMMEDIATE")
                await until(lambda: "journal_stalled" in [e["event"] for e in read_events(log_file)])
                demo.switch.shutdown()
                await until(lambda: "shutdown_draining" in [e["event"] for e in read_events(log_file)])
                await trio.sleep(0.2)
                assert not answers and demo.switch.in_flight == 1
                locker.rollback()
    assert answers[0]["39"] == "00"
    await until(demo.switch.stopped.is_set)
    assert [r["state"] for r in journal_rows(tmp_path / "data")] == ["approved"]


async def test_a_request_reaches_its_issuer_only_once_its_reversal_is_committed(demo, tmp_path, log_file):
    """The journal is locked by another process when a purchase comes: its row and reversal
    cannot be committed, so the issuer must not see it (its books stay as they were) until
    they are; then it goes, and is answered."""
    bank = demo.issuers["bank_a"][1]
    balance = bank.accounts[APPROVE].balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        async with trio.open_nursery() as nursery:
            answers = []

            async def purchase():
                answers.append(await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))

            with sqlite3.connect(tmp_path / "data" / DB_FILE) as locker:
                locker.execute("BEGIN IMMEDIATE")
                nursery.start_soon(purchase)
                await until(lambda: "journal_stalled" in [e["event"] for e in read_events(log_file)])
                await trio.sleep(0.3)
                assert not answers and bank.accounts[APPROVE].balance == balance
                locker.rollback()
    assert answers[0]["39"] == "00" and bank.accounts[APPROVE].balance == balance - 100
    await demo.switch.journal.flush()
    assert [(r["state"], r["reversal"]) for r in journal_rows(tmp_path / "data")] == [("approved", None)]


async def test_a_reversal_reaches_its_issuer_only_once_its_own_row_is_committed(demo, tmp_path, log_file):
    """The same for a terminal's 0400: its row (what it reverses, by how much, and its sealed
    0420) is queued, not waited for, so its 0400 must wait at the link until it is committed."""
    bank = demo.issuers["bank_a"][1]
    balance = bank.accounts[APPROVE].balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
        async with trio.open_nursery() as nursery:
            answers = []

            async def reverse():
                answers.append(await terminal.reverse(purchase))

            with sqlite3.connect(tmp_path / "data" / DB_FILE) as locker:
                locker.execute("BEGIN IMMEDIATE")
                nursery.start_soon(reverse)
                await until(lambda: "journal_stalled" in [e["event"] for e in read_events(log_file)])
                await trio.sleep(0.3)
                assert not answers and bank.accounts[APPROVE].balance == balance - 100 and not bank.reversals
                locker.rollback()
    assert answers[0]["39"] == "00" and bank.accounts[APPROVE].balance == balance
    assert invariants_hold(tmp_path / "data") == []


async def start_slow_purchase(demo, stream: trio.SocketStream) -> None:
    """Send, on a raw connection, a purchase bank_c answers after 0.8 s; return once it is in flight."""
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        request = terminal.card_request("0200", pan="6011000000000038", amount=100, expiry=EXPIRY)
    await stream.send_all(load_dialect().frame(request))
    await until(lambda: demo.switch.in_flight)


async def test_a_shutdown_whose_grace_runs_out_leaves_the_transaction_to_be_reversed_at_the_next_start(
        demo, tmp_path, log_file):
    """The issuer (0.8 s) is slower than the grace (0.1 s): the switch stops anyway. The request
    was at the issuer, so its row stays pending with its reversal, and the next start reverses
    it, as after a crash."""
    demo.switch.config = attrs.evolve(demo.switch.config, shutdown_grace=0.1)
    async with await trio.open_tcp_stream("127.0.0.1", demo.ports["terminals"]) as stream:
        await start_slow_purchase(demo, stream)
        demo.switch.shutdown()
        await until(demo.switch.stopped.is_set)  # a deadline on the real clock: the journal flushes
        assert await stream.receive_some(100) == b""  # closed, no answer
    rows = journal_rows(tmp_path / "data")
    assert [(r["state"], r["reversal"] is not None) for r in rows] == [("pending", True)]
    assert [e["abandoned"] for e in read_events(log_file) if e["event"] == "shutdown_complete"] == [1]
    Switch(demo.switch.config).journal.close()  # the next start recovers, before any traffic
    rows = journal_rows(tmp_path / "data")
    assert [(r["state"], r["rc"], r["reason"]) for r in rows] == [
        ("interrupted", "91", "switch stopped while in flight: reversed")]
    saf = journal_rows(tmp_path / "data", "SELECT * FROM saf")
    assert [(s["kind"], s["trace"], s["status"]) for s in saf] == [("recovery_reversal", rows[0]["trace"], "queued")]


async def test_a_reversal_after_a_restart_names_the_original_as_the_issuer_got_it(nursery, tmp_path):
    """The switch gives the issuer its own STAN; the reversal's field 90 must name that one, also
    when the original comes back from the journal rather than from memory."""
    bank = make_bank({"pan": APPROVE})
    issuer_port = await start_issuer(nursery, bank)
    first, port = await start_switch(nursery, tmp_path, {"port": issuer_port})
    await first.wait_links_up()
    async with open_terminal("127.0.0.1", port, first_stan=500) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=2500, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
    first.shutdown()
    with trio.fail_after(5):
        await first.stopped.wait()
    balance = bank.accounts[APPROVE].balance

    second, port = await start_switch(nursery, tmp_path, {"port": issuer_port})
    await second.wait_links_up()
    async with open_terminal("127.0.0.1", port, first_stan=900) as terminal:
        assert (await terminal.reverse(purchase))["39"] == "00"
    await second.journal.flush()
    sent_as = journal_rows(tmp_path / "data")[0]["sent_as"]
    assert sent_as[:4] == "0200" and sent_as[4:10] != purchase["11"]  # the switch's STAN, not the terminal's
    assert bank.reversals == {(APPROVE, sent_as)}
    assert bank.accounts[APPROVE].balance == balance + 2500


async def test_the_links_stans_continue_across_a_restart(nursery, tmp_path):
    """An issuer that remembers the STANs it has seen must never see one reused by a restarted
    switch for another request: the link goes on past the last one the journal holds."""
    issuer_port = await start_issuer(nursery, make_bank({"pan": APPROVE}))
    stans = []
    for run in range(2):
        switch, port = await start_switch(nursery, tmp_path, {"port": issuer_port})
        await switch.wait_links_up()
        async with open_terminal("127.0.0.1", port, first_stan=100 + run * 100) as terminal:
            assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
        switch.shutdown()
        with trio.fail_after(5):
            await switch.stopped.wait()
        stans.append(int(journal_rows(tmp_path / "data")[-1]["sent_as"][4:10]))
    assert stans[1] > stans[0] + 1000  # past the margin for what the journal does not record


async def test_a_terminal_hanging_up_does_not_cancel_its_transaction(demo, tmp_path):
    """The issuer's approval still lands in the journal; the terminal will reverse it."""
    account = demo.issuers["bank_c"][1].accounts["6011000000000038"]  # answers after 0.8 s
    before = account.balance
    async with await trio.open_tcp_stream("127.0.0.1", demo.ports["terminals"]) as stream:
        await start_slow_purchase(demo, stream)
    await until(lambda: not demo.switch.in_flight, timeout=5)
    await demo.switch.journal.flush()
    assert [(r["state"], r["rc"]) for r in journal_rows(tmp_path / "data")] == [("approved", "00")]
    assert account.balance == before - 100
