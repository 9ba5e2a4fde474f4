"""The business day: field 15 on responses, `business_date` on journal rows, the cutover at its
time or on an operator's word, on one switch and across instances on a shared journal."""

from __future__ import annotations

import datetime

import pytest
import trio

from conftest import make_bank, serve_switch, start_issuer, write_config
from emulators.network import start_network
from emulators.terminal import open_terminal
from switch.admin import answer
from switch.config import load_config
from switch.core.business import BusinessDay
from switch.errors import ConfigError
from switch.service import Switch

APPROVE, EXPIRY = "4761730000000011", "3012"
NIGHT = datetime.time(22, 0)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def test_a_day_runs_from_one_cutover_to_the_next_and_is_named_after_the_day_it_ends_on():
    day = BusinessDay(NIGHT, at("2026-12-01T21:59"))
    assert day.date == datetime.date(2026, 12, 1) and day.field15 == "1201"
    assert not day.follow(at("2026-12-01T21:59:59"))
    assert day.follow(at("2026-12-01T22:00")) and day.date == datetime.date(2026, 12, 2)
    assert BusinessDay(datetime.time(0, 0), at("2026-12-31T23:59")).date == datetime.date(2026, 12, 31)
    assert BusinessDay(datetime.time(0, 0), at("2027-01-01T00:00")).field15 == "0101"


def test_an_early_cutover_starts_the_next_date_and_the_schedule_does_not_move_it_again():
    day = BusinessDay(NIGHT, at("2026-12-01T15:00"))
    assert day.cut_over() == datetime.date(2026, 12, 2)
    assert not day.follow(at("2026-12-01T22:30"))  # the calendar caught up: nothing to move
    assert day.follow(at("2026-12-02T22:00")) and day.date == datetime.date(2026, 12, 3)


def test_the_date_never_goes_back_and_follows_another_instance_forward():
    day = BusinessDay(NIGHT, at("2026-12-01T10:00"), known=datetime.date(2026, 12, 2))
    assert day.date == datetime.date(2026, 12, 2)  # an early cutover before the restart holds
    assert not day.follow(at("2026-12-01T11:00"), known=datetime.date(2026, 11, 30))
    assert day.follow(at("2026-12-01T11:00"), known=datetime.date(2026, 12, 3))
    assert day.date == datetime.date(2026, 12, 3)


def test_a_cutover_that_is_not_a_time_of_day_is_refused(tmp_path):
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": 9}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    config.write_text('[switch]\ncutover = "25:00"\n' + config.read_text())
    with pytest.raises(ConfigError, match=r"switch.cutover: a UTC time of day, HH:MM"):
        load_config(config)


async def test_responses_and_rows_carry_the_business_date_and_a_cutover_moves_it(demo, tmp_path):
    today = demo.switch.business.date
    tomorrow = today + datetime.timedelta(days=1)
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        before = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
        first = await terminal.send(before)
        reply = await answer(demo.switch, "cutover")
        after = await terminal.purchase(pan=APPROVE, amount=200, expiry=EXPIRY)
        again = await terminal.send(before.copy())  # a retransmission: the first answer, its date
    assert reply == {"ok": True, "detail": f"business date {tomorrow.isoformat()}"}
    assert first["15"] == f"{today:%m%d}" and after["15"] == f"{tomorrow:%m%d}"
    assert again["15"] == first["15"] and again["38"] == first["38"]
    await demo.switch.journal.flush()
    rows = demo.switch.journal.read("SELECT amount, state, business_date FROM transactions ORDER BY created_at")
    assert [tuple(row) for row in rows] == [(100, "approved", today.isoformat()),
                                           (200, "approved", tomorrow.isoformat()),
                                           (100, "duplicate", tomorrow.isoformat())]


async def test_an_early_cutover_holds_across_a_restart(tmp_path):
    async def business_date() -> datetime.date:
        async with trio.open_nursery() as nursery:
            network = await start_network(nursery, tmp_path / "data")
            date = network.switch.business.date
            if date == datetime.datetime.now(datetime.timezone.utc).date():
                network.switch.cut_over()
            network.switch.shutdown()
            await network.switch.stopped.wait()
            nursery.cancel_scope.cancel()
        return date

    first = await business_date()
    assert await business_date() == first + datetime.timedelta(days=1)


async def test_a_cutover_at_one_instance_reaches_the_others(nursery, tmp_path, postgres_url, log_file):
    network = await start_network(nursery, tmp_path / "data", journal=postgres_url)
    other = Switch(network.switch.config)
    await nursery.start(other.run)
    date = network.switch.cut_over()
    with trio.fail_after(5):
        while other.business.date != date:
            await trio.sleep(0.05)


async def test_a_cutover_under_load_splits_the_traffic_without_a_pause(demo):
    """Eight terminals buying while the operator cuts over: every answer carries the date its
    row settles on, both dates are used, and nobody waits or gets an error."""
    answers = []

    async def buy(number: int) -> None:
        async with open_terminal("127.0.0.1", demo.ports["terminals"], tid=f"TLOAD{number:03d}") as terminal:
            for _ in range(25):
                request = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
                answers.append((request, await terminal.send(request)))

    async with trio.open_nursery() as load:
        for number in range(8):
            load.start_soon(buy, number)
        while len(answers) < 60:  # well under way
            await trio.sleep(0.002)
        demo.switch.cut_over()
    assert len(answers) == 200 and {reply["39"] for _, reply in answers} == {"00"}
    await demo.switch.journal.flush()
    settled = {(row[0], row[1]): row[2] for row in demo.switch.journal.read(
        "SELECT tid, stan, business_date FROM transactions WHERE mti = '0200'")}
    dates = set()
    for request, reply in answers:
        date = datetime.date.fromisoformat(settled[(request["41"], request["11"])])
        assert reply["15"] == f"{date:%m%d}"
        dates.add(date)
    assert len(dates) == 2


async def test_a_request_in_flight_across_the_cutover_settles_on_the_day_it_was_decided(nursery, tmp_path):
    """Its row is opened on one date and decided on the next: the answer's 15 and the row agree
    on the second (the row's date is written again only in that case)."""
    bank = make_bank({"pan": APPROVE, "latency_ms": 300})
    issuer_port = await start_issuer(nursery, bank)
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    today = switch.business.date
    async with open_terminal("127.0.0.1", ports["terminals"]) as terminal:
        async with trio.open_nursery() as buying:
            replies = []

            async def buy() -> None:
                replies.append(await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))
            buying.start_soon(buy)
            await trio.sleep(0.1)  # the request is at the issuer
            tomorrow = switch.cut_over()
    await switch.journal.flush()
    [row] = switch.journal.read("SELECT state, business_date FROM transactions")
    assert tomorrow == today + datetime.timedelta(days=1)
    assert tuple(row) == ("approved", tomorrow.isoformat()) and replies[0]["15"] == f"{tomorrow:%m%d}"
