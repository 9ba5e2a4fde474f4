"""Overload protection over real loopback sockets: beyond `[switch] max_in_flight` new
authorisations and purchases get 91 at once (journaled, never forwarded, not remembered as
duplicates), reversals, advices and network messages still go through; beyond an issuer's
`max_in_flight` its link is treated as down (stand-in, else 91)."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from conftest import make_bank, read_events, start_issuer, toml_text, until
from emulators.terminal import open_terminal
from switch.admin import status
from switch.config import DEFAULT_MAX_IN_FLIGHT, load_config
from switch.errors import ConfigError
from switch.journal import DB_FILE
from switch.service import Switch

SLOW = "4761730000000011"  # the issuer answers it after LATENCY_MS: it holds a slot meanwhile
FAST = "4761730000000029"
SLOW_B = "5200000000000015"
FAST_B = "5200000000000023"
EXPIRY = "3012"
LATENCY_MS = 500
STAND_IN = {"max_amount": 5000, "daily_count": 5, "daily_amount": 20000, "processing_codes": ["00"]}


def write_switch(tmp_path, issuers: list[dict], routes: list[dict], settings: dict | None = None):
    config = tmp_path / "switch.toml"
    config.write_text(toml_text({"switch": {"data_dir": str(tmp_path / "data"), **(settings or {})},
                                 "listeners": [{"name": "terminals", "port": 0}],
                                 "issuers": issuers, "routes": routes}))
    return config


async def start_switch(nursery, tmp_path, issuers, routes, settings=None) -> tuple[Switch, int]:
    switch = Switch(load_config(write_switch(tmp_path, issuers, routes, settings)))
    ports = await nursery.start(switch.run)
    await switch.wait_links_up()
    return switch, ports["terminals"]


async def one_bank_switch(nursery, tmp_path, max_in_flight=2):
    bank = make_bank({"pan": SLOW, "latency_ms": LATENCY_MS}, {"pan": FAST})
    port = await start_issuer(nursery, bank)
    switch, switch_port = await start_switch(nursery, tmp_path, [{"name": "bank", "port": port}],
                                             [{"prefix": "4", "issuer": "bank"}], {"max_in_flight": max_in_flight})
    return bank, switch, switch_port


def journal_rows(tmp_path, sql="SELECT * FROM transactions ORDER BY trace", params=()):
    with sqlite3.connect(tmp_path / "data" / DB_FILE) as connection:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, params).fetchall()


async def test_beyond_max_in_flight_the_excess_gets_91_at_once_and_everything_is_journaled(
        nursery, tmp_path, log_file):
    bank, switch, port = await one_bank_switch(nursery, tmp_path)
    answers: list[tuple[int, str]] = []
    async with open_terminal("127.0.0.1", port) as terminal:
        async def buy(amount: int) -> None:
            answers.append((amount, (await terminal.purchase(pan=SLOW, amount=amount, expiry=EXPIRY))["39"]))

        async with trio.open_nursery() as purchases:
            for amount in range(101, 106):
                purchases.start_soon(buy, amount)
    codes = [code for _, code in answers]
    assert codes == ["91", "91", "91", "00", "00"]  # the three shed answered before either approval
    approved = sum(amount for amount, code in answers if code == "00")
    assert bank.accounts[SLOW].balance == 100000 - approved  # the shed ones never reached the issuer

    await until(lambda: not switch.overloaded)
    await switch.journal.flush()
    rows = journal_rows(tmp_path)
    assert sorted((r["state"], r["rc"], r["reason"]) for r in rows) == [
        ("approved", "00", None)] * 2 + [("rejected", "91", "switch overloaded")] * 3
    assert all(r["issuer"] is None for r in rows if r["state"] == "rejected")
    events = read_events(log_file)
    txns = [e for e in events if e["event"] == "txn"]
    assert sorted(e["state"] for e in txns) == ["approved"] * 2 + ["rejected"] * 3
    assert all(e["pan"] == "476173******0011" for e in txns)
    overloaded = [e for e in events if e["event"] == "overloaded"]
    cleared = [e for e in events if e["event"] == "overload_cleared"]
    assert len(overloaded) == 1 and overloaded[0]["level"] == "warning" and overloaded[0]["max_in_flight"] == 2
    assert len(cleared) == 1 and cleared[0]["shed"] == 3
    reported = status(switch)
    assert (reported["shed"], reported["overloaded"], reported["in_flight"]) == (3, False, 0)
    assert SLOW not in log_file.read_text()


async def test_a_retry_of_a_shed_request_is_processed_not_answered_as_a_duplicate(nursery, tmp_path):
    bank, switch, port = await one_bank_switch(nursery, tmp_path)
    async with open_terminal("127.0.0.1", port) as terminal:
        request = terminal.card_request("0200", pan=FAST, amount=700, expiry=EXPIRY)
        async with trio.open_nursery() as slow:
            for _ in range(2):
                slow.start_soon(lambda: terminal.purchase(pan=SLOW, amount=100, expiry=EXPIRY))
            await until(lambda: switch.in_flight == 2)
            shed = await terminal.send(request)
            assert shed["39"] == "91"
        retry = await terminal.send(request)  # same STAN and transmission time
        again = await terminal.send(request)
    assert (retry["39"], again["39"]) == ("00", "00")
    assert again["38"] == retry["38"]  # the second retry is the duplicate of the processed one
    assert bank.accounts[FAST].balance == 100000 - 700  # debited once
    await switch.journal.flush()
    rows = journal_rows(tmp_path, "SELECT * FROM transactions WHERE stan = ? ORDER BY trace", (request["11"],))
    assert [(r["state"], r["rc"]) for r in rows] == [("rejected", "91"), ("approved", "00"), ("duplicate", "00")]
    assert switch.shed == 1


async def test_a_retransmission_of_an_accepted_request_is_answered_as_the_first_time_not_shed(nursery, tmp_path):
    bank, switch, port = await one_bank_switch(nursery, tmp_path)
    async with open_terminal("127.0.0.1", port) as terminal:
        request = terminal.card_request("0200", pan=FAST, amount=800, expiry=EXPIRY)
        first = await terminal.send(request)
        async with trio.open_nursery() as slow:
            for _ in range(2):
                slow.start_soon(lambda: terminal.purchase(pan=SLOW, amount=100, expiry=EXPIRY))
            await until(lambda: switch.in_flight == 2)
            again = await terminal.send(request)  # same STAN and transmission time, at the bound
    assert (first["39"], again["39"], again["38"]) == ("00", "00", first["38"])
    assert bank.accounts[FAST].balance == 100000 - 800  # debited once
    await switch.journal.flush()
    rows = journal_rows(tmp_path, "SELECT * FROM transactions WHERE stan = ? ORDER BY trace", (request["11"],))
    assert [r["state"] for r in rows] == ["approved", "duplicate"]
    assert switch.shed == 0


async def test_reversals_advices_and_network_messages_are_never_shed(nursery, tmp_path):
    bank, switch, port = await one_bank_switch(nursery, tmp_path)
    async with open_terminal("127.0.0.1", port) as terminal:
        purchase = terminal.card_request("0200", pan=FAST, amount=900, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
        async with trio.open_nursery() as slow:
            for _ in range(2):
                slow.start_soon(lambda: terminal.purchase(pan=SLOW, amount=100, expiry=EXPIRY))
            await until(lambda: switch.in_flight == 2)
            reversal = await terminal.reverse(purchase)
            advice = await terminal.send(terminal.card_request("0220", pan=FAST, amount=50, expiry=EXPIRY))
            echo = await terminal.echo()
            repeat = terminal.card_request("0201", pan=FAST, amount=60, expiry=EXPIRY)
            authorisation = terminal.card_request("0100", pan=FAST, amount=70, expiry=EXPIRY)
            shed = [await terminal.send(repeat), await terminal.send(authorisation)]
            assert switch.in_flight >= 2  # the slow purchases were still running throughout
    assert [(m.mti, m["39"]) for m in (reversal, advice, echo)] == [("0410", "00"), ("0230", "00"), ("0810", "00")]
    assert [(m.mti, m["39"]) for m in shed] == [("0210", "91"), ("0110", "91")]
    assert bank.reversals  # forwarded to the issuer online, at the bound
    assert switch.shed == 2
    await switch.journal.flush()
    rows = journal_rows(tmp_path, "SELECT * FROM transactions WHERE amount IN (50, 60, 70)")
    states = {r["mti"]: r["state"] for r in rows}
    assert states == {"0220": "approved", "0200": "rejected", "0100": "rejected"}


async def test_a_saturated_issuer_link_stands_in_or_answers_91(nursery, tmp_path, log_file):
    banks = {"standin": make_bank({"pan": SLOW, "latency_ms": LATENCY_MS}, {"pan": FAST}),
             "plain": make_bank({"pan": SLOW_B, "latency_ms": LATENCY_MS}, {"pan": FAST_B})}
    issuers = [{"name": "standin", "port": await start_issuer(nursery, banks["standin"], name="standin"),
                "max_in_flight": 1, "stand_in": STAND_IN},
               {"name": "plain", "port": await start_issuer(nursery, banks["plain"], name="plain"),
                "max_in_flight": 1}]
    switch, port = await start_switch(nursery, tmp_path, issuers,
                                      [{"prefix": "4", "issuer": "standin"}, {"prefix": "5", "issuer": "plain"}])
    async with open_terminal("127.0.0.1", port) as terminal:
        async with trio.open_nursery() as slow:
            for pan in (SLOW, SLOW_B):
                slow.start_soon(lambda pan=pan: terminal.purchase(pan=pan, amount=100, expiry=EXPIRY))
            await until(lambda: switch.links["standin"].in_flight == switch.links["plain"].in_flight == 1)
            stood_in = await terminal.purchase(pan=FAST, amount=300, expiry=EXPIRY)
            refused = await terminal.purchase(pan=FAST_B, amount=300, expiry=EXPIRY)
            reported = status(switch)
        afterwards = await terminal.purchase(pan=FAST_B, amount=400, expiry=EXPIRY)
    assert stood_in["39"] == "00" and stood_in["38"].startswith("S")
    assert refused["39"] == "91"
    assert afterwards["39"] == "00" and banks["plain"].accounts[FAST_B].balance == 100000 - 400
    assert {name: link["saturated"] for name, link in reported["links"].items()} == {"standin": 1, "plain": 1}
    assert reported["shed"] == 0  # the switch itself was not overloaded
    await switch.journal.flush()
    rows = {(r["issuer"], r["amount"]): r for r in journal_rows(tmp_path)}
    assert rows[("standin", 300)]["state"] == "stood_in"
    assert rows[("standin", 300)]["reason"].startswith("issuer link saturated; ")
    assert (rows[("plain", 300)]["state"], rows[("plain", 300)]["reason"]) == ("failed", "issuer link saturated")
    events = read_events(log_file)
    assert not [e for e in events if e["event"] == "overloaded"]
    refused_line = [e for e in events if e["event"] == "txn" and e["trace"] == rows[("plain", 300)]["trace"]]
    assert refused_line[0]["issuer_ms"] is None  # the issuer was never asked


def test_max_in_flight_defaults(tmp_path):
    config = load_config(write_switch(tmp_path, [{"name": "bank", "port": 9}], [{"prefix": "4", "issuer": "bank"}]))
    assert config.max_in_flight == DEFAULT_MAX_IN_FLIGHT == 2000
    assert config.issuers[0].max_in_flight is None


@pytest.mark.parametrize("settings, issuer, key", [
    ({"max_in_flight": 0}, {}, "switch.max_in_flight"),
    ({"max_in_flight": "many"}, {}, "switch.max_in_flight"),
    ({"max_in_flight": True}, {}, "switch.max_in_flight"),
    ({}, {"max_in_flight": 0}, "issuers[0].max_in_flight"),
    ({}, {"max_in_flight": "10"}, "issuers[0].max_in_flight"),
])
def test_bad_max_in_flight_is_an_error_naming_the_key(tmp_path, settings, issuer, key):
    config = write_switch(tmp_path, [{"name": "bank", "port": 9, **issuer}], [{"prefix": "4", "issuer": "bank"}],
                          settings)
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert str(error.value) == f"{config}: {key}: an integer, at least 1"
