"""PIN translation and verification, CVV / iCVV / CVV2 through the switch, over real loopback
sockets, with the HSM in-process and over TCP (switch.hsm.server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from conftest import log_text, read_events
from tools.load.processes import free_port, free_ports
from emulators.bank import Bank
from emulators.issuer import load_issuer_file, serve_issuer
from emulators.network import DEMO_DIR, DEMO_KEYS, DEMO_LMK, terminal_pin_key
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.hsm.lmk import load_lmk
from switch.hsm.server import serve_hsm
from switch.journal import Journal
from switch.pintries import PinTries
from switch.service import Switch

pytestmark = pytest.mark.both_stores  # the demo network on SQLite and on PostgreSQL

EXPIRY = "3012"
BANK_A = DEMO_DIR / "issuers" / "bank_a.toml"
CARD = "4761730000000011"  # bank_a: PIN 1234, PVV 7900, service code 201, CVV 334, CVV2 042, iCVV 959
PIN, CVV, CVV2, ICVV = "1234", "334", "042", "959"
OTHER_CARD, OTHER_PIN = "4761730000000052", "8642"
BANK_B_CARD, BANK_B_PIN = "5200000000000015", "9753"  # bank_b verifies PINs itself (IBM offset)


def track2(cvv: str, pan: str = CARD) -> str:
    """PAN=YYMM, service code, then PVKI (1) + PVV (4) + CVV (3): the layout the switch reads."""
    return f"{pan}={EXPIRY}201" + "17900" + cvv + "00000"


@pytest.fixture(scope="module")
def pin_key():
    return terminal_pin_key()


def switch_config(tmp_path: Path, issuer_port: int, *, mode: str = "in-process", hsm_port: int = 1500,
                  pin: str = "pvv", max_pin_tries: int = 2, listener_keys: str = 'tpk = "tpk.demo"',
                  dialect: str = "iso87-binary") -> Path:
    """bank_a behind a switch that verifies everything on its behalf; `dialect` is the terminals'."""
    path = tmp_path / "switch.toml"
    path.write_text(f"""
[hsm]
mode = "{mode}"
port = {hsm_port}
timeout_ms = 300
keys = "{DEMO_KEYS}"
lmk_file = "{DEMO_LMK}"

[[listeners]]
name = "terminals"
port = 0
dialect = "{dialect}"
{listener_keys}

[[issuers]]
name = "bank_a"
port = {issuer_port}
zpk = "zpk.bank_a"

[issuers.verify]
pin = "{pin}"
pvk = "pvk.bank_a"
card_data = "{BANK_A}"
max_pin_tries = {max_pin_tries}
cvv = true
cvv2 = true
cvk = "cvk.bank_a"

[[routes]]
prefix = "476173"
issuer = "bank_a"
""")
    return path


async def start_switch(nursery: trio.Nursery, tmp_path: Path, **options) -> Switch:
    """bank_a's emulator and a switch in front of it, on ephemeral ports."""
    return (await start_switch_and_bank(nursery, tmp_path, **options))[0]


async def start_switch_and_bank(nursery: trio.Nursery, tmp_path: Path, **options) -> tuple[Switch, Bank]:
    """`start_switch`, and bank_a's books to see what reached it."""
    host_config, bank = load_issuer_file(BANK_A)
    issuer_port = await nursery.start(serve_issuer, attrs.evolve(host_config, port=0), bank)
    switch = Switch(load_config(switch_config(tmp_path, issuer_port, **options), data_dir=tmp_path / "data"))
    switch.ports = await nursery.start(switch.run)
    with trio.fail_after(5):
        await switch.wait_links_up()
    return switch, bank


async def journal_rows(switch: Switch) -> list[tuple[str, str, str | None]]:
    await switch.journal.flush()
    return [(row["rc"], row["state"], row["reason"])
            for row in switch.journal.read("SELECT rc, state, reason FROM transactions ORDER BY trace")]


# -- through the demo network (bank_a verified by the switch, bank_b by its own host) ---------

async def test_pin_purchase_is_translated_and_approved_end_to_end(demo, pin_key):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], pin_key=pin_key) as terminal:
        # bank_b's host verifies the PIN block under its ZPK: only a translated block passes.
        assert (await terminal.purchase(pan=BANK_B_CARD, amount=100, expiry=EXPIRY, pin=BANK_B_PIN))["39"] == "00"
        assert (await terminal.purchase(pan=BANK_B_CARD, amount=100, expiry=EXPIRY, pin="0000"))["39"] == "55"
        # bank_a: the switch verifies the PVV, then bank_a's host verifies again.
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN))["39"] == "00"
    rows = await journal_rows(demo.switch)
    assert [row[:2] for row in rows] == [("00", "approved"), ("55", "declined"), ("00", "approved")]


async def test_wrong_pins_give_55_then_75_and_a_correct_pin_resets_the_count(demo, pin_key):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], pin_key=pin_key) as terminal:
        async def rc(pan: str, pin: str) -> str:
            return (await terminal.purchase(pan=pan, amount=100, expiry=EXPIRY, pin=pin))["39"]

        assert [await rc(OTHER_CARD, "0000"), await rc(OTHER_CARD, OTHER_PIN), await rc(OTHER_CARD, "0000")] \
            == ["55", "00", "55"]
        # demo bank_a: max_pin_tries = 3; once exceeded even the right PIN is refused.
        assert [await rc(CARD, "1111"), await rc(CARD, "2222"), await rc(CARD, "3333"), await rc(CARD, PIN)] \
            == ["55", "55", "75", "75"]
        assert await rc(OTHER_CARD, OTHER_PIN) == "00"  # counted per card
    rows = await journal_rows(demo.switch)
    assert rows[3] == ("55", "declined", "wrong PIN (1 of 3)")
    assert rows[5][:2] == ("75", "declined") and "tries exceeded" in rows[5][2]


async def test_pin_for_a_card_the_issuer_shared_no_data_for_gives_96(demo, pin_key):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], pin_key=pin_key) as terminal:
        response = await terminal.purchase(pan="4761739999999995", amount=100, expiry=EXPIRY, pin=PIN)
    assert response["39"] == "96"
    assert (await journal_rows(demo.switch))[0] == ("96", "failed", "no PIN verification data for this card")


async def test_cvv2_is_checked_for_the_issuer(demo):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, cvv2=CVV2))["39"] == "00"
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, cvv2="999"))["39"] == "N7"
        assert (await terminal.purchase(pan=CARD, amount=100, expiry="3101", cvv2=CVV2))["39"] == "N7"
    assert (await journal_rows(demo.switch))[1] == ("N7", "declined", "CVV2 failed")


# -- field 48 in the listener's layout: a CVV2 the switch cannot find is never a missing one -----

CATEGORY_TLV = "field 48: not category TLV (a category letter or digit, then 2-digit tag, 2-digit length, value)"


async def test_cvv2_in_the_category_layout_is_checked_and_what_does_not_read_gets_30(
        nursery, tmp_path, category_dialect, log_file):
    switch, bank = await start_switch_and_bank(nursery, tmp_path, dialect=str(category_dialect))
    account = bank.accounts[CARD]
    async with open_terminal("127.0.0.1", switch.ports["terminals"]) as terminal:
        async def rc(field48: str) -> str:
            return (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, extra={"48": field48}))["39"]

        assert await rc(f"R0103ABC9203{CVV2}") == "00"
        assert await rc("R9203999") == "N7"
        assert await rc("R0103ABC") == "00"  # no CVV2 to check
        balance = account.balance
        assert await rc("9203999") == "30"  # plain TLV: "9" would be the category, then no TLV
        assert await rc("R92") == "30"
        assert await rc(f"R9203{CVV2}9203999") == "30"  # two CVV2s: which would the issuer read?
        assert account.balance == balance  # none of them reached bank_a
    rows = await journal_rows(switch)
    assert rows[1] == ("N7", "declined", "CVV2 failed")
    assert rows[3:] == [("30", "rejected", CATEGORY_TLV)] * 2 + [
        ("30", "rejected", "field 48: more than one CVV2 subelement (tag 92)")]
    text = log_text(log_file)
    for secret in (f"9203{CVV2}", "9203999"):
        assert secret not in text and not any(secret in str(value) for row in rows for value in row)


async def test_plain_layout_listener_refuses_a_category_field_48_where_cvv2_is_checked(demo):
    """The demo's listeners are plain: bank_a has its CVV2 checked by the switch, bank_b not."""
    account = demo.issuers["bank_a"][1].accounts[CARD]
    balance = account.balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        response = await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, extra={"48": "R9203999"})
        assert response["39"] == "30" and account.balance == balance
        # Without a CVV2 check, field 48 is the issuer's business: forwarded as it came.
        assert (await terminal.purchase(pan=BANK_B_CARD, amount=100, expiry=EXPIRY,
                                        extra={"48": "NOT TLV AT ALL"}))["39"] == "00"
    rows = await journal_rows(demo.switch)
    assert rows[0] == ("30", "rejected", "field 48: not plain TLV (2-digit tag, 2-digit length, value)")
    assert rows[1][:2] == ("00", "approved")


@pytest.mark.parametrize("mode", ["in-process", "tcp"])
async def test_malformed_pin_block_gives_30_and_uses_no_pin_try(nursery, tmp_path, pin_key, log_file, mode):
    hsm_port = await nursery.start(serve_hsm, 0, "127.0.0.1", load_lmk(DEMO_LMK)) if mode == "tcp" else 1500
    switch = await start_switch(nursery, tmp_path, mode=mode, hsm_port=hsm_port)  # max_pin_tries = 2
    block = "0123456789ABCDEF"  # not made under the terminal's TPK: no valid PIN block inside
    async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key) as terminal:
        for _ in range(3):
            assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin_block=block))["39"] == "30"
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN))["39"] == "00"
    assert (await journal_rows(switch))[0] == ("30", "rejected", "PIN block from the terminal is not valid")
    events = [e for e in read_events(log_file) if e["event"] == "pin_block_invalid"]
    assert len(events) == 3 and events[0]["command"] == "CA" and events[0]["code"] == "20"
    assert not any(e["event"] == "hsm_error" for e in read_events(log_file))
    assert block not in log_text(log_file)


async def test_logs_carry_no_pin_block_pin_or_cvv(demo, log_file, pin_key):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], pin_key=pin_key) as terminal:
        request = terminal.card_request("0200", pan=OTHER_CARD, amount=100, expiry=EXPIRY, pin=OTHER_PIN)
        await terminal.send(request)
        await terminal.purchase(pan=OTHER_CARD, amount=100, expiry=EXPIRY, pin="0000")
        await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, cvv2=CVV2)
        await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, cvv2="731")
    text = log_text(log_file)
    assert '"rc":"55"' in text and '"rc":"N7"' in text
    for secret in (request["52"], "9203" + CVV2, "9203731", pin_key.keystore.encrypted("tpk.demo")):
        assert secret not in text
    strings = [v for event in read_events(log_file) for v in event.values() if isinstance(v, str)]
    assert not any(OTHER_PIN in v or v in (CVV2, "731") for v in strings)


# -- a switch of our own: CVV / iCVV in track 2, IBM offsets, the HSM over TCP ----------------

async def test_track2_cvv_and_chip_icvv(nursery, tmp_path):
    switch = await start_switch(nursery, tmp_path)
    async with open_terminal("127.0.0.1", switch.ports["terminals"]) as terminal:
        async def rc(track: str, entry_mode: str = "901") -> str:
            return (await terminal.purchase(track2=track, amount=100, extra={"22": entry_mode}))["39"]

        assert await rc(track2(CVV)) == "00"
        assert await rc(track2("000")) == "82"
        assert await rc(f"{CARD}={EXPIRY}201") == "82"  # no CVV at all
        assert await rc(track2(ICVV), "051") == "00"  # chip: the iCVV, not the magstripe CVV
        assert await rc(track2(CVV), "051") == "82"
    reasons = [row[2] for row in await journal_rows(switch)]
    assert reasons[1:] == ["CVV failed", "track 2 without a CVV", None, "iCVV failed"]


async def test_ibm_offset_verification(nursery, tmp_path, pin_key):
    switch = await start_switch(nursery, tmp_path, pin="ibm")
    async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN))["39"] == "00"
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin="4321"))["39"] == "55"
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin="4321"))["39"] == "75"


async def test_used_up_pin_tries_survive_a_restart(tmp_path, pin_key):
    async def wrong_pins_then_correct(count: int) -> list[str]:
        async with trio.open_nursery() as nursery:
            switch = await start_switch(nursery, tmp_path)
            # A new STAN range: the same STANs within a second would be retransmissions.
            async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key,
                                     first_stan=100 * (count + 1)) as terminal:
                codes = [(await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=pin))["39"]
                         for pin in ["4321"] * count + [PIN]]
            switch.shutdown()
            await switch.stopped.wait()
            nursery.cancel_scope.cancel()  # the issuer emulator too
        return codes

    assert await wrong_pins_then_correct(2) == ["55", "75", "75"]  # max_pin_tries = 2
    assert await wrong_pins_then_correct(0) == ["75"]  # a new switch process still knows


async def test_a_burst_of_wrong_pins_gets_no_more_guesses_than_the_tries(nursery, tmp_path, pin_key):
    # Over TCP each HSM round trip is a real wait, the window in which parallel requests for
    # one card could all pass the tries check before any wrong PIN was counted.
    hsm_port = await nursery.start(serve_hsm, 0, "127.0.0.1", load_lmk(DEMO_LMK))
    switch = await start_switch(nursery, tmp_path, mode="tcp", hsm_port=hsm_port)  # max_pin_tries = 2
    codes = []
    async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key) as terminal:
        async def guess(pin: str) -> None:
            codes.append((await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=pin))["39"])

        async with trio.open_nursery() as guesses:  # one burst, all in flight at once
            for n in range(8):
                guesses.start_soon(guess, f"{n:04d}")
        # Only the first wrong PIN is a 55: the second reaches the limit (75), the rest are refused.
        assert sorted(codes) == ["55"] + ["75"] * 7
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN))["39"] == "75"
    reasons = [row[2] for row in await journal_rows(switch)]
    assert sum(reason.startswith("wrong PIN") for reason in reasons) == 2
    assert reasons.count("PIN tries exceeded earlier") == 7


async def test_pin_checks_wait_only_for_the_same_card(tmp_path):
    journal = Journal(tmp_path)
    tries = PinTries(journal)
    entered, release_first = [], trio.Event()

    async def check(card: str, name: str, release: trio.Event) -> None:
        async with tries.held(card):
            entered.append(name)
            await release.wait()

    done = trio.Event()
    done.set()
    async with trio.open_nursery() as checks:
        checks.start_soon(check, "card-a", "a1", release_first)
        await trio.testing.wait_all_tasks_blocked()
        checks.start_soon(check, "card-a", "a2", done)
        checks.start_soon(check, "card-b", "b", done)
        await trio.testing.wait_all_tasks_blocked()
        assert entered == ["a1", "b"]  # card b went ahead; a2 waits for a1
        release_first.set()
    assert entered == ["a1", "b", "a2"]
    assert not tries._locks  # nothing kept for cards no longer being checked
    journal.close()


async def test_hsm_over_tcp_approves_and_declines(nursery, tmp_path, pin_key):
    hsm_port = await nursery.start(serve_hsm, 0, "127.0.0.1", load_lmk(DEMO_LMK))
    switch = await start_switch(nursery, tmp_path, mode="tcp", hsm_port=hsm_port)
    async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN, cvv2=CVV2))["39"] == "00"
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin="9999"))["39"] == "55"
        assert (await terminal.purchase(track2=track2("123"), amount=100))["39"] == "82"


async def test_unreachable_hsm_gives_96_quickly(nursery, tmp_path, pin_key, log_file):
    switch = await start_switch(nursery, tmp_path, mode="tcp", hsm_port=free_port())
    async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key) as terminal:
        started = trio.current_time()
        response = await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN)
        assert response["39"] == "96"
        assert trio.current_time() - started < 1.0  # [hsm] timeout_ms = 300
        # A transaction that needs no HSM still goes through.
        assert (await terminal.echo())["39"] == "00"
    assert (await journal_rows(switch))[0] == ("96", "failed", "HSM unavailable")
    assert any(e["event"] == "hsm_unavailable" for e in read_events(log_file))


async def test_hsm_key_error_still_gives_96(nursery, tmp_path, pin_key, log_file):
    other_lmk = tmp_path / "other-lmk.txt"  # an HSM under another LMK cannot use our keys
    other_lmk.write_text("0123456789ABCDEFFEDCBA9876543210\n")
    hsm_port = await nursery.start(serve_hsm, 0, "127.0.0.1", load_lmk(other_lmk))
    switch = await start_switch(nursery, tmp_path, mode="tcp", hsm_port=hsm_port)
    async with open_terminal("127.0.0.1", switch.ports["terminals"], pin_key=pin_key) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN))["39"] == "96"
    rc, state, reason = (await journal_rows(switch))[0]
    assert (rc, state) == ("96", "failed") and reason.startswith("HSM error")
    assert [e["event"] for e in read_events(log_file)].count("hsm_error") == 1


async def test_terminal_tpk_overrides_the_listener(nursery, tmp_path, pin_key):
    override_only = '[[listeners.terminals]]\ntid = "T0000009"\ntpk = "tpk.demo"'
    switch = await start_switch(nursery, tmp_path, listener_keys=override_only)
    for tid, expected in (("T0000009", "00"), ("T0000001", "96")):
        async with open_terminal("127.0.0.1", switch.ports["terminals"], tid=tid, pin_key=pin_key) as terminal:
            assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY, pin=PIN))["39"] == expected
    assert (await journal_rows(switch))[1][2] == "PIN block but no terminal's TPK configured"


# -- the command line ------------------------------------------------------------------------

def test_terminal_command_sends_pin_and_cvv2_to_the_demo():
    port = free_ports(2)  # the demo listens on PORT and PORT+1
    env = {k: v for k, v in os.environ.items() if k != "CARDSWITCH_LMK"}
    command = [sys.executable, "-m", "switch.cli"]
    demo = subprocess.Popen([*command, "demo", "--serve", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in demo.stdout:
            if line.startswith("demo network up"):
                break

        tids = iter(["T0000011", "T0000012", "T0000013", "T0000014"])  # each run starts at STAN 1

        def purchase(*options: str) -> tuple[int, str | None]:
            result = subprocess.run([*command, "terminal", "purchase", "--port", str(port), "--pan", CARD,
                                     "--expiry", EXPIRY, "--amount", "5", "--tid", next(tids), "--json", *options],
                                    capture_output=True, text=True, env=env, timeout=30)
            return result.returncode, json.loads(result.stdout)["39"] if result.stdout else None

        assert purchase("--pin", PIN) == (0, "00")
        assert purchase("--pin", "0000") == (1, "55")
        assert purchase("--cvv2", "999") == (1, "N7")
        assert purchase("--pin", "12") == (2, None)
    finally:
        demo.terminate()
        demo.wait(timeout=10)


# -- config --------------------------------------------------------------------------------

@pytest.mark.parametrize("change, key, expected", [
    (('tpk = "tpk.demo"', 'tpk = "zpk.bank_a"'), "listeners[0].tpk", "a TPK key"),
    (('zpk = "zpk.bank_a"', 'zpk = "nope"'), "issuers[0].zpk", "a ZPK key"),
    (('pin = "pvv"', 'pin = "dukpt"'), "issuers[0].verify.pin", "one of: ibm, pvv"),
    (('mode = "in-process"', 'mode = "hsm9000"'), "hsm.mode", "one of: in-process, tcp"),
    (('cvk = "cvk.bank_a"', ''), "issuers[0].verify.cvk", "a CVK key"),
    (('max_pin_tries = 2', 'max_pin_tries = 0'), "issuers[0].verify.max_pin_tries", "from 1 to 99"),
    (('zpk = "zpk.bank_a"', ''), "issuers[0].zpk", "a ZPK name"),
    ((f'keys = "{DEMO_KEYS}"', ''), "listeners[0].tpk", "[hsm] keys"),
    ((f'card_data = "{BANK_A}"', 'card_data = "missing.toml"'), "issuers[0].verify.card_data", "card data file"),
])
def test_config_errors_name_the_key(tmp_path, change, key, expected):
    path = switch_config(tmp_path, 9101)
    path.write_text(path.read_text().replace(*change))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.key == key and expected in error.value.expected


def test_card_data_must_carry_what_the_method_needs(tmp_path):
    cards = tmp_path / "cards.toml"
    cards.write_text(f'[[cards]]\npan = "{CARD}"\nibm_offset = "1234"\n')
    path = switch_config(tmp_path, 9101)
    path.write_text(path.read_text().replace(str(BANK_A), str(cards)))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert (error.value.file, error.value.key) == (str(cards), "cards[0].pvv")


def test_wrong_lmk_stops_the_switch_at_start(tmp_path):
    lmk = tmp_path / "lmk.txt"
    lmk.write_text("0123456789ABCDEFFEDCBA9876543210\n")
    path = switch_config(tmp_path, 9101)
    path.write_text(path.read_text().replace(str(DEMO_LMK), str(lmk)))
    with pytest.raises(ConfigError) as error:
        Switch(load_config(path, data_dir=tmp_path / "data"))
    assert error.value.key == "lmk_check_value"


def test_issuer_file_pin_keys_are_checked(tmp_path):
    issuer = tmp_path / "issuer.toml"
    issuer.write_text(BANK_A.read_text().replace('pvk = "pvk.bank_a"', 'pvk = "pvk.nobody"')
                      .replace('"../keys.toml"', f'"{DEMO_KEYS}"').replace('"../lmk-insecure.txt"', f'"{DEMO_LMK}"'))
    with pytest.raises(ConfigError) as error:
        load_issuer_file(issuer)
    assert (error.value.key, error.value.expected) == ("issuer.pvk", f"the name of a key in {DEMO_KEYS}")
