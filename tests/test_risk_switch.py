"""Risk rules in the running switch, over loopback sockets: what terminals get, what reaches the
issuer, what the journal and the log say, and what survives a restart or a reload."""

from __future__ import annotations

import contextlib
import json
import sys

import pytest
import trio

from conftest import journal_rows, log_text, make_bank, read_events, start_issuer
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.service import Switch
from tools.load.processes import toml_text

CARD = "4761730000000011"
OTHER = "4761730000000029"
UNKNOWN = [f"47617300000001{n}{d}" for n, d in ((0, 8), (1, 6), (2, 4), (3, 2), (4, 0), (5, 7))]  # unknown at the issuer: 14


def rules_toml(*rules: dict) -> str:
    return toml_text({"rules": list(rules)})


@contextlib.asynccontextmanager
async def network(tmp_path, rules: str, *cards: str):
    """One issuer (knows `cards`, or CARD and OTHER), a switch with `rules`; yields (switch, port)."""
    async with trio.open_nursery() as nursery:
        issuer_port = await start_issuer(nursery, make_bank(*({"pan": pan} for pan in cards or (CARD, OTHER))))
        (tmp_path / "risk.toml").write_text(rules)
        config = tmp_path / "switch.toml"
        config.write_text(toml_text({
            "switch": {"data_dir": str(tmp_path / "data")}, "risk": {"rules": "risk.toml"},
            "listeners": [{"name": "terminals", "port": 0}],
            "issuers": [{"name": "bank", "port": issuer_port}], "routes": [{"prefix": "4", "issuer": "bank"}]}))
        switch = Switch(load_config(config))
        ports = await nursery.start(switch.run)
        await switch.wait_links_up()
        yield switch, ports["terminals"]
        switch.shutdown()
        await switch.stopped.wait()
        nursery.cancel_scope.cancel()


def rows(tmp_path) -> list:
    return journal_rows(tmp_path / "data")


VELOCITY = {"name": "two-an-hour", "kind": "velocity", "per": "card", "window_s": 3600, "max_count": 2,
            "max_amount": 1000}


async def test_velocity_declines_beyond_the_count_and_the_amount_without_asking_the_issuer(tmp_path, log_file):
    async with network(tmp_path, rules_toml(VELOCITY)) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            codes = [(await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] for _ in range(3)]
            over = (await terminal.purchase(pan=OTHER, amount=1001, expiry="3012"))["39"]
            declined_by_issuer = (await terminal.purchase(pan=OTHER, amount=999, expiry="2001"))["39"]
            still_room = (await terminal.purchase(pan=OTHER, amount=999, expiry="3012"))["39"]
        await switch.journal.flush()
    assert codes == ["00", "00", "65"]
    assert over == "61"
    assert declined_by_issuer == "54" and still_room == "00"  # a decline frees what it reserved
    third = rows(tmp_path)[2]
    assert third["issuer"] is None and third["sent_at"] is None  # never reached the issuer
    assert third["risk"] == "declined by two-an-hour: 2 approvals per card within 3600 s (limit 2)"
    assert third["state"] == "declined"
    line = [e for e in read_events(log_file) if e["event"] == "txn"][2]
    assert line["risk"] == third["risk"] and CARD not in log_text(log_file)


async def test_a_burst_for_one_card_cannot_outrun_its_count(tmp_path):
    async with network(tmp_path, rules_toml(VELOCITY)) as (switch, port):
        codes: list[str] = []
        async with open_terminal("127.0.0.1", port) as terminal:
            async with trio.open_nursery() as burst:
                for _ in range(8):
                    burst.start_soon(lambda: _append(codes, terminal.purchase(pan=CARD, amount=1, expiry="3012")))
    assert sorted(codes) == ["00", "00"] + ["65"] * 6


async def _append(codes: list[str], request) -> None:
    codes.append((await request)["39"])


CARD_TESTING = {"name": "testing", "kind": "card_testing", "per": "terminal", "distinct_cards": 5,
                "window_s": 60, "cooldown_s": 60}


async def test_card_testing_stops_the_terminal_for_its_cool_down_and_alerts(tmp_path, log_file, virtual_clock):
    async with network(tmp_path, rules_toml(CARD_TESTING)) as (switch, port):
        async with open_terminal("127.0.0.1", port, tid="T0000666") as tester, \
                open_terminal("127.0.0.1", port, tid="T0000001") as honest:
            tries = [(await tester.purchase(pan=pan, amount=100, expiry="3012"))["39"] for pan in UNKNOWN[:5]]
            stopped = (await tester.purchase(pan=CARD, amount=100, expiry="3012"))["39"]
            elsewhere = (await honest.purchase(pan=CARD, amount=100, expiry="3012"))["39"]
            virtual_clock.jump(61)
            after = (await tester.purchase(pan=CARD, amount=100, expiry="3012"))["39"]
        await switch.journal.flush()
    assert tries == ["14"] * 5 and stopped == "59" and elsewhere == "00" and after == "00"
    stopped_row = rows(tmp_path)[5]
    assert stopped_row["issuer"] is None and stopped_row["risk"].startswith("declined by testing:")
    alerts = [e for e in read_events(log_file) if e["event"] == "risk_alert"]
    assert [(a["rule"], a["per"], a["key"], a["distinct_cards"]) for a in alerts] == [("testing", "terminal", "T0000666", 5)]
    assert not any(pan in log_text(log_file) for pan in UNKNOWN + [CARD])


async def test_the_same_card_declined_again_is_not_card_testing(tmp_path):
    async with network(tmp_path, rules_toml(CARD_TESTING)) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            for _ in range(6):
                assert (await terminal.purchase(pan=UNKNOWN[0], amount=100, expiry="3012"))["39"] == "14"
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "00"


async def test_unroutable_cards_count_as_card_testing_too(tmp_path):
    rule = dict(CARD_TESTING, codes=["15"], distinct_cards=2)
    async with network(tmp_path, rules_toml(rule)) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            for pan in ("3700000000000007", "3700000000000015"):
                assert (await terminal.purchase(pan=pan, amount=100, expiry="3012"))["39"] == "15"
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "59"


@pytest.mark.parametrize("rule, fields, code", [
    ({"kind": "country", "deny": ["408"]}, {"19": "408"}, "59"),
    ({"kind": "country", "deny": ["408"]}, {"19": "250"}, "00"),
    ({"kind": "country", "deny": ["408"]}, {}, "00"),  # nothing to deny
    ({"kind": "country", "allow": ["250", "276"]}, {"19": "840"}, "59"),
    ({"kind": "country", "allow": ["250", "276"]}, {}, "59"),  # cannot show it is allowed: fails closed
    ({"kind": "country", "allow": ["250", "276"]}, {"19": "276"}, "00"),
    ({"kind": "amount", "max_amount": 5000, "mccs": ["7995"]}, {"18": "7995", "4": "000000005001"}, "61"),
    ({"kind": "amount", "max_amount": 5000, "mccs": ["7995"]}, {"18": "5411", "4": "000000005001"}, "00"),
    ({"kind": "amount", "max_amount": 5000, "require_pin": True}, {"4": "000000005001"}, "70"),
    ({"kind": "amount", "max_amount": 5000, "require_pin": True, "channel": "present"},
     {"4": "000000005001"}, "00"),  # keyed: card not present, out of scope
    ({"kind": "country", "deny": ["408"], "code": "57"}, {"19": "408"}, "57"),
])
async def test_country_and_amount_rules(tmp_path, rule, fields, code):
    async with network(tmp_path, rules_toml({"name": "rule", **rule})) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012", extra=fields))["39"] == code


async def test_impossible_travel_between_two_card_present_countries(tmp_path, virtual_clock):
    rule = {"name": "travel", "kind": "travel", "min_interval_s": 60}
    track2 = f"{CARD}=30122010000000000000"
    async with network(tmp_path, rules_toml(rule)) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            paris = (await terminal.purchase(track2=track2, amount=100, extra={"19": "250"}))["39"]
            new_york = (await terminal.purchase(track2=track2, amount=100, extra={"19": "840"}))["39"]
            online = (await terminal.purchase(pan=CARD, expiry="3012", amount=100, extra={"19": "840"}))["39"]
            virtual_clock.jump(61)
            later = (await terminal.purchase(track2=track2, amount=100, extra={"19": "840"}))["39"]
    assert (paris, new_york, online, later) == ("00", "59", "00", "00")


async def test_rate_limits_answer_the_excess_91_at_once(tmp_path):
    rules = rules_toml({"name": "per-terminal", "kind": "rate", "per": "terminal", "per_second": 0.01, "burst": 3,
                        "terminals": ["T0000001"]},
                       {"name": "per-connection", "kind": "rate", "per": "connection", "per_second": 0.01,
                        "burst": 2, "terminals": ["T0000002"]})
    async with network(tmp_path, rules) as (switch, port):
        async with open_terminal("127.0.0.1", port) as one, open_terminal("127.0.0.1", port, first_stan=100) as two:
            first = [(await t.purchase(pan=CARD, amount=1, expiry="3012"))["39"] for t in (one, two, one, two)]
            echo = (await one.echo())["39"]  # network management is never limited
        async with open_terminal("127.0.0.1", port, tid="T0000002") as a, \
                open_terminal("127.0.0.1", port, tid="T0000002", first_stan=100) as b:
            second = [(await t.purchase(pan=CARD, amount=1, expiry="3012"))["39"] for t in (a, a, a, b)]
        await switch.journal.flush()
    assert first == ["00", "00", "00", "91"] and echo == "00"
    assert second == ["00", "00", "91", "00"]  # per connection: b has its own bucket
    limited = [row for row in rows(tmp_path) if row["rc"] == "91"]
    assert {row["state"] for row in limited} == {"rejected"} and all(row["issuer"] is None for row in limited)


async def test_a_retransmission_of_a_request_taken_is_not_rate_limited(tmp_path):
    rules = rules_toml({"name": "slow", "kind": "rate", "per": "terminal", "per_second": 0.01, "burst": 1})
    async with network(tmp_path, rules) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            request = terminal.card_request("0200", pan=CARD, amount=1, expiry="3012")
            first = await terminal.send(request)
            again = await terminal.send(request)
    assert first["39"] == again["39"] == "00" and first["38"] == again["38"]


async def test_a_flag_is_journaled_and_logged_and_the_request_goes_on(tmp_path, log_file):
    rule = {"name": "big-ticket", "kind": "amount", "max_amount": 50, "action": "flag"}
    async with network(tmp_path, rules_toml(rule)) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "00"
        await switch.journal.flush()
    row = rows(tmp_path)[0]
    assert (row["state"], row["risk"]) == ("approved", "flagged by big-ticket: amount above 50")
    assert [e["risk"] for e in read_events(log_file) if e["event"] == "txn"] == [row["risk"]]


async def test_counts_are_rebuilt_from_the_journal_at_start(tmp_path):
    rules = rules_toml(VELOCITY, CARD_TESTING)
    async with network(tmp_path, rules) as (switch, port):
        async with open_terminal("127.0.0.1", port, tid="T0000666") as terminal:
            assert [(await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] for _ in range(2)] == ["00"] * 2
            assert [(await terminal.purchase(pan=pan, amount=1, expiry="3012"))["39"] for pan in UNKNOWN[:4]] == ["14"] * 4
    async with network(tmp_path, rules) as (switch, port):
        async with open_terminal("127.0.0.1", port, tid="T0000001") as terminal:
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "65"
        async with open_terminal("127.0.0.1", port, tid="T0000666", first_stan=100) as terminal:
            assert (await terminal.purchase(pan=UNKNOWN[4], amount=1, expiry="3012"))["39"] == "14"  # the 5th card
            assert (await terminal.purchase(pan=OTHER, amount=1, expiry="3012"))["39"] == "59"


async def test_a_bad_reload_keeps_the_running_rules_and_a_good_one_keeps_their_counts(tmp_path, log_file):
    async with network(tmp_path, rules_toml(VELOCITY)) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            for _ in range(2):
                assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "00"
            (tmp_path / "risk.toml").write_text(rules_toml(dict(VELOCITY, window_s=-1)))
            ok, detail = await switch.reload_risk()
            assert not ok and "risk.toml:3: rules[0].window_s: seconds, more than 0" in detail and "\n" not in detail
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "65"
            (tmp_path / "risk.toml").write_text(rules_toml(VELOCITY, {"name": "deny", "kind": "country", "deny": ["408"]}))
            assert await switch.reload_risk() == (True, "2 rules")
            assert (await terminal.purchase(pan=CARD, amount=100, expiry="3012"))["39"] == "65"  # counts kept
            assert (await terminal.purchase(pan=OTHER, amount=1, expiry="3012", extra={"19": "408"}))["39"] == "59"
    assert [e["event"] for e in read_events(log_file) if e["event"].startswith("risk_re")] == \
        ["risk_reload_rejected", "risk_reloaded"]


@pytest.mark.parametrize("rules, expected", [
    ('[[rules]]\nname = "x"\nkind = "velocity"\nper = "card"\nwindow_s = 60\n', "risk.toml:1: rules[0].max_count: max_count, max_amount or both"),
    ('[[rules]]\nname = "x"\nkind = "speed"\n', "risk.toml:1: rules[0].kind: one of velocity, card_testing"),
    ('[[rules]]\nname = "x"\nkind = "country"\ndeny = ["FR"]\n', "risk.toml:1: rules[0].deny: a list of 3-digit"),
    ('[[rules]]\nname = "x"\nkind = "country"\ndeny = ["408"]\nissuers = ["nobody"]\n',
     "risk.toml:1: rules.x.issuers: issuers the switch defines (bank), not nobody"),
    ('[[rules]]\nname = "x"\nkind = "country"\ndeny = ["408"]\nbins = ["47-4"]\n', "rules[0].bins: BIN prefixes or LOW-HIGH"),
    ('[[rules]]\nname = "x"\nkind = "rate"\nper = "card"\nper_second = 1\nburst = 1\n', "rules[0].per: one of connection, terminal"),
])
def test_a_bad_rules_file_stops_the_switch_with_one_line(tmp_path, rules, expected):
    (tmp_path / "risk.toml").write_text(rules)
    config = tmp_path / "switch.toml"
    config.write_text(toml_text({"risk": {"rules": "risk.toml"}, "listeners": [{"name": "terminals", "port": 0}],
                                 "issuers": [{"name": "bank", "port": 1}], "routes": [{"prefix": "4", "issuer": "bank"}]}))
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert expected in str(raised.value) and "\n" not in str(raised.value)


async def test_journal_list_shows_what_the_rules_said(tmp_path):
    rules = rules_toml({"name": "deny", "kind": "country", "deny": ["408"]},
                       {"name": "big", "kind": "amount", "max_amount": 50, "action": "flag"})
    async with network(tmp_path, rules) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            await terminal.purchase(pan=CARD, amount=1, expiry="3012", extra={"19": "408"})
            await terminal.purchase(pan=CARD, amount=1, expiry="3012")
            await terminal.purchase(pan=CARD, amount=100, expiry="3012")

    async def listed(*options: str) -> list[dict]:
        process = await trio.run_process([sys.executable, "-m", "switch.cli", "journal", "list", "--data-dir",
                                          str(tmp_path / "data"), "--json", *options], capture_stdout=True)
        return [json.loads(line) for line in process.stdout.decode().splitlines()]

    denied, plain, flagged = await listed()
    assert (denied["rc"], denied["country"], denied["risk"]) == ("59", "408", "declined by deny: acquiring country 408 is denied")
    assert plain["risk"] is None and flagged["risk"] == "flagged by big: amount above 50"
    assert [row["trace"] for row in await listed("--risk")] == [denied["trace"], flagged["trace"]]
    assert [row["trace"] for row in await listed("--risk", "big")] == [flagged["trace"]]


async def test_advices_and_reversals_are_not_judged(tmp_path):
    rules = rules_toml({"name": "deny", "kind": "country", "deny": ["408"]},
                       {"name": "slow", "kind": "rate", "per": "terminal", "per_second": 0.01, "burst": 1})
    async with network(tmp_path, rules) as (switch, port):
        async with open_terminal("127.0.0.1", port) as terminal:
            purchase = terminal.card_request("0200", pan=CARD, amount=100, expiry="3012")
            assert (await terminal.send(purchase))["39"] == "00"
            assert (await terminal.reverse(purchase))["39"] == "00"  # beyond the rate: never limited
            advice = terminal.card_request("0220", pan=CARD, amount=100, expiry="3012", extra={"19": "408"})
            assert (await terminal.send(advice))["39"] == "00"  # what was done offline is recorded


def test_the_rules_memory_forgets_cards_once_their_windows_pass():
    from switch.core.risk.engine import RiskEngine
    from switch.core.risk.facts import Facts
    from switch.risk import load_rules

    path = __import__("pathlib").Path(__file__).parent.parent / "specs" / "demo" / "risk.toml"
    engine = RiskEngine(load_rules(path))
    for n in range(10_000):
        facts = Facts(pan=f"47617300{n:08d}", pan_hash=f"hash-{n}", issuer="bank_a", terminal=f"T{n % 50:07d}",
                      acquirer=None, merchant=None, mcc=None, country="250", channel="present", amount=100,
                      has_pin=False)
        engine.settle(engine.assess(facts, n * 0.01), "N7" if n % 3 else "00", n * 0.01)
    assert engine.held() > 0
    later = 10_000 * 0.01 + 3601
    facts = Facts(pan="4761730000000011", pan_hash="fresh", issuer="bank_a", terminal="T9999999", acquirer=None,
                  merchant=None, mcc=None, country="250", channel="present", amount=100, has_pin=False)
    engine.settle(engine.assess(facts, later), "N7", later)
    assert engine.held() == 1  # the one card testing just saw
