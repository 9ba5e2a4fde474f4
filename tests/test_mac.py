"""Message MACs over real loopback sockets: a terminal that must MAC its requests (the demo's
TMAC0001), issuers that ask for MACs (the emulator checks them), an issuer's answer whose MAC
fails, and a key change over 0800 taken without a restart."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
import trio

from conftest import log_text, make_bank, read_events, until
from emulators.issuer import IssuerHostConfig, load_issuer_file, serve_issuer
from emulators.issuer_macs import IssuerMacs
from emulators.network import DEMO_KEYS, DEMO_LMK
from emulators.terminal import ResponseMacError, TerminalError, open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.core.keychange import KeyChange, key_change_request
from switch.hsm import mac
from switch.hsm.client import InProcessHsm
from switch.hsm.keys import Key
from switch.hsm.keystore import Keystore
from switch.hsm.lmk import load_lmk
from switch.hsm.validation import insecure_key_hex
from switch.issuer_keys import IssuerKeys
from switch.service import Switch
from switch.wire.dialect import load_dialect
from switch.wire.macs import received_mac
from switch.wire.message import Message

CARD, EXPIRY = "4761730000000011", "3012"
MAC_TERMINAL = "TMAC0001"  # the demo's terminal that must MAC its requests
KEYSTORE = Keystore.load(DEMO_KEYS, load_lmk(DEMO_LMK))
TAK = insecure_key_hex(KEYSTORE, "tak.demo")
ZAK = insecure_key_hex(KEYSTORE, "zak.bank_a")


async def journal(switch: Switch) -> list[tuple]:
    await switch.journal.flush()
    return [tuple(row) for row in switch.journal.read("SELECT tid, rc, state, reason FROM transactions ORDER BY trace")]


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 1]) + data[position + 1:]


# -- a terminal that must MAC (the demo network) -------------------------------------------

async def test_a_maced_purchase_is_approved_and_its_answer_carries_a_mac_under_the_tak(demo, tmp_path):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        response = await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY)  # the terminal checks its MAC
        assert response["39"] == "00" and "64" in response
        assert (await terminal.echo())["39"] == "00"  # network messages are MACed too
    assert (await journal(demo.switch))[0][:3] == (MAC_TERMINAL, "00", "approved")


async def test_the_answers_mac_verifies_under_the_tak_over_the_bytes_as_sent(demo):
    dialect = load_dialect()
    async with open_terminal("127.0.0.1", demo.ports["terminals"], tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        request = terminal.card_request("0200", pan=CARD, amount=100, expiry=EXPIRY)
        response = await terminal.send(request)
    payload = dialect.encode(response)  # the dialect encodes the same bytes the switch sent
    found = received_mac(response, payload, dialect)
    assert not isinstance(found, str) and found.field == "64"
    assert mac.verify(Key.tdes(bytes.fromhex(TAK)), found.data, bytes.fromhex(found.mac))
    assert not mac.verify(Key.tdes(bytes.fromhex(ZAK)), found.data, bytes.fromhex(found.mac))


async def test_a_missing_mac_gets_63_and_nothing_is_forwarded(demo, tmp_path):
    bank = demo.issuers["bank_a"][1]
    balance = bank.accounts[CARD].balance
    async with open_terminal("127.0.0.1", demo.ports["terminals"], tid=MAC_TERMINAL) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "63"
    assert bank.accounts[CARD].balance == balance
    assert await journal(demo.switch) == [(MAC_TERMINAL, "63", "rejected", "field 64: MAC missing")]
    assert demo.switch.links["bank_a"].matcher.last_stan == 0  # the issuer's link never sent anything


@pytest.mark.parametrize("where", ["amount", "stan", "merchant", "mac"])
async def test_one_bit_flipped_anywhere_gets_63(demo, tmp_path, where):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        request = terminal.card_request("0200", pan=CARD, amount=100, expiry=EXPIRY)
        payload = terminal.encode(request)
        position = {"amount": payload.index(b"000000000100") + 11, "stan": payload.index(request["11"].encode()),
                    "merchant": payload.index(request["42"].encode()) + 3, "mac": len(payload) - 1}[where]
        await terminal.send_raw(load_dialect().framing.frame(flip(payload, position)))
        await until(lambda: terminal.unmatched)  # its answer: the terminal sent it raw, waits for none
    assert await journal(demo.switch) == [(MAC_TERMINAL, "63", "rejected", "field 64: MAC does not verify")]


async def test_a_mac_under_another_key_gets_63(demo, tmp_path):
    async with open_terminal("127.0.0.1", demo.ports["terminals"], tid=MAC_TERMINAL, mac_key=ZAK) as terminal:
        with pytest.raises(ResponseMacError):  # the switch's 63 comes under the TAK, not this key
            await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY)
    assert (await journal(demo.switch))[0][1:] == ("63", "rejected", "field 64: MAC does not verify")


async def test_cardswitch_terminal_macs_with_tak(demo):
    command = [sys.executable, "-m", "switch.cli", "terminal", "purchase", "--target",
               f"127.0.0.1:{demo.ports['terminals']}", "--pan", CARD, "--expiry", EXPIRY, "--amount", "1",
               "--tid", MAC_TERMINAL, "--json"]
    maced = await trio.run_process([*command, "--tak", TAK], capture_stdout=True, check=False)
    assert maced.returncode == 0 and json.loads(maced.stdout)["39"] == "00"
    unmaced = await trio.run_process(command, capture_stdout=True, check=False)
    assert unmaced.returncode == 1 and json.loads(unmaced.stdout)["39"] == "63"
    wrong = await trio.run_process([*command, "--tak", ZAK], capture_stderr=True, check=False)
    assert wrong.returncode == 3 and b"field 64: MAC does not verify" in wrong.stderr


async def test_terminals_without_the_mac_profile_are_unaffected(demo):
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:  # T0000001
        response = await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY)
    assert response["39"] == "00" and "64" not in response


# -- issuers that ask for MACs -------------------------------------------------------------

def issuer_macs(zak: str = "zak.bank_a", **options) -> IssuerMacs:
    return IssuerMacs(InProcessHsm(KEYSTORE.lmk), KEYSTORE.encrypted(zak), KEYSTORE.encrypted("zmk.bank_a"), **options)


# The demo's HSM and one terminal listener: what every switch config in these tests starts with.
HSM_AND_LISTENER = f"""
[hsm]
keys = "{DEMO_KEYS}"
lmk_file = "{DEMO_LMK}"

[[listeners]]
name = "terminals"
port = 0
"""


async def start_mac_network(nursery, tmp_path: Path, macs: IssuerMacs, *, dialect: str = "iso87-binary",
                            switch_zak: str = "zak.bank_a", timeout_ms: int = 2000) -> tuple[Switch, int]:
    """One issuer asking for MACs (its emulator with `macs`), behind a switch with the demo's
    MAC terminal; returns the switch and the terminals' port."""
    host = IssuerHostConfig(name="bank_a", host="127.0.0.1", port=0, dialect=load_dialect(dialect), macs=macs)
    issuer_port = await nursery.start(serve_issuer, host, make_bank({"pan": CARD}))
    path = tmp_path / "switch.toml"
    path.write_text(HSM_AND_LISTENER + f"""
[[listeners.terminals]]
tid = "{MAC_TERMINAL}"
tak = "tak.demo"
mac = true

[[issuers]]
name = "bank_a"
port = {issuer_port}
dialect = "{dialect}"
timeout_ms = {timeout_ms}
zak = "{switch_zak}"
mac = true
zmk = "zmk.bank_a"

[[routes]]
prefix = "476173"
issuer = "bank_a"
""")
    switch = Switch(load_config(path, data_dir=tmp_path / "data"))
    ports = await nursery.start(switch.run)
    with trio.fail_after(5):
        await switch.wait_links_up()
    return switch, ports["terminals"]


@pytest.mark.parametrize("dialect", ["iso87-binary", "iso87-ascii"])
async def test_requests_to_an_issuer_that_asks_for_macs_are_maced_after_re_encoding(nursery, tmp_path, log_file,
                                                                                    dialect):
    macs = issuer_macs()
    _, port = await start_mac_network(nursery, tmp_path, macs, dialect=dialect)
    async with open_terminal("127.0.0.1", port, tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "00"
        reversal = await terminal.reverse(terminal.card_request("0200", pan=CARD, amount=100, expiry=EXPIRY))
        assert reversal["39"] == "25"  # unknown original: MACs checked both ways, nothing forwarded
    assert not [e for e in read_events(log_file) if "mac_failed" in e["event"]]


async def test_the_issuer_emulator_answers_63_to_a_wrong_mac_or_drops_it(nursery):
    dialect = load_dialect()
    host = IssuerHostConfig(name="bank_a", host="127.0.0.1", port=0, dialect=dialect, macs=issuer_macs())
    port = await nursery.start(serve_issuer, host, make_bank({"pan": CARD}))
    async with open_terminal("127.0.0.1", port, mac_key=ZAK) as as_switch:  # MACs under the shared ZAK
        assert (await as_switch.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "00"
    async with open_terminal("127.0.0.1", port) as without:
        assert (await without.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "63"
    dropping = IssuerHostConfig(name="bank_a", host="127.0.0.1", port=0, dialect=dialect,
                                macs=issuer_macs(drop=True))
    port = await nursery.start(serve_issuer, dropping, make_bank({"pan": CARD}))
    async with open_terminal("127.0.0.1", port, mac_key=TAK, timeout=0.5) as wrong_key:
        with pytest.raises(TerminalError, match="no response"):
            await wrong_key.purchase(pan=CARD, amount=100, expiry=EXPIRY)


async def test_an_issuer_answer_whose_mac_fails_is_reversed_and_answered_91(nursery, tmp_path, log_file):
    """The switch and the issuer hold different ZAKs: the issuer refuses the request (63, MACed
    under its key) and the switch cannot trust that answer: reversed through SAF, 91."""
    switch, port = await start_mac_network(nursery, tmp_path, issuer_macs(), switch_zak="zak.bank_b")
    async with open_terminal("127.0.0.1", port, tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "91"
    assert (await journal(switch))[0][1:] == ("91", "failed", "issuer response failed its MAC check")
    with sqlite3.connect(tmp_path / "data" / "journal.db") as connection:
        assert connection.execute("SELECT kind, mti FROM saf").fetchall() == [("timeout_reversal", "0420")]
    failed = [e for e in read_events(log_file) if e["event"] == "issuer_response_mac_failed"]
    assert failed[0]["reason"] == "field 64: MAC does not verify"


# -- key change over 0800 ---------------------------------------------------------------

async def test_a_zak_changed_over_0800_is_used_at_once_without_restart(nursery, tmp_path, log_file):
    macs = issuer_macs()
    switch, port = await start_mac_network(nursery, tmp_path, macs)
    async with open_terminal("127.0.0.1", port, tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "00"
        assert await macs.change_key() == "00"
        # The issuer MACs its answers under the new key only: the switch must have it.
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "00"
    assert macs.under_previous == 0  # the request after the change came under the new key
    changed = [e for e in read_events(log_file) if e["event"] == "key_changed"]
    assert [(e["issuer"], e["key"], e["type"]) for e in changed] == [("bank_a", "zak.bank_a", "ZAK")]
    new_key = switch.config.hsm.keys["zak.bank_a"] if switch.config.hsm else ""
    assert new_key != KEYSTORE.encrypted("zak.bank_a")
    assert changed[0]["kcv"] == (await InProcessHsm(KEYSTORE.lmk).key_check_value("008", new_key))
    assert new_key not in log_text(log_file)


async def test_a_zpk_key_change_replaces_the_issuers_zpk_and_bad_ones_are_refused(tmp_path, log_file):
    config = load_config(write_switch_with_zpk(tmp_path))
    assert config.hsm is not None
    issuer, hsm = config.issuers[0], InProcessHsm(KEYSTORE.lmk)
    keys = IssuerKeys(hsm, config.hsm)
    fresh = await hsm.generate_key("001", zmk=KEYSTORE.encrypted("zmk.bank_a"))
    assert fresh.under_zmk is not None

    def change(key_type: str = "ZPK", under_zmk: str = fresh.under_zmk, kcv: str = fresh.kcv) -> Message:
        return key_change_request(KeyChange(key_type, under_zmk, kcv), "000001", "0101120000")

    assert await keys.change(issuer, change(kcv="000000")) == "96"  # check value does not match
    assert await keys.change(issuer, change("ZAK")) == "96"  # no ZAK configured for this issuer
    assert await keys.change(issuer, Message("0800", {"70": "101", "48": "0103ZPK"})) == "30"
    assert config.hsm.keys["zpk.bank_a"] == KEYSTORE.encrypted("zpk.bank_a")
    assert await keys.change(issuer, change()) == "00"
    assert config.hsm.keys["zpk.bank_a"] == fresh.under_lmk
    reasons = [e["reason"] for e in read_events(log_file) if e["event"] == "key_change_refused"]
    assert reasons == ["ZPK: check value does not match the key", "no zak configured for this issuer",
                       "field 48: no key change (type, key under ZMK, check value)"]


def write_switch_with_zpk(tmp_path: Path) -> Path:
    path = tmp_path / "switch.toml"
    path.write_text(HSM_AND_LISTENER + """
[[issuers]]
name = "bank_a"
port = 9
zpk = "zpk.bank_a"
zmk = "zmk.bank_a"
""")
    return path


# -- PCI ----------------------------------------------------------------------------------

async def test_no_clear_mac_key_and_no_mac_in_logs_or_journal(nursery, tmp_path, log_file):
    macs = issuer_macs()
    switch, port = await start_mac_network(nursery, tmp_path, macs)
    seen = []
    async with open_terminal("127.0.0.1", port, tid=MAC_TERMINAL, mac_key=TAK) as terminal:
        for _ in range(3):
            request = terminal.card_request("0200", pan=CARD, amount=100, expiry=EXPIRY)
            seen.append(terminal.encode(request)[-8:].hex().upper())  # the request's MAC
            seen.append((await terminal.send(request))["64"])  # the answer's
        await terminal.send_raw(load_dialect().framing.frame(flip(terminal.encode(request), 20)))
        await until(lambda: terminal.unmatched)
        await macs.change_key()
        assert (await terminal.purchase(pan=CARD, amount=100, expiry=EXPIRY))["39"] == "00"
    assert len(await journal(switch)) == 5
    logged = log_text(log_file)
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").iterdir() if path.is_file())
    secrets = [TAK, ZAK, insecure_key_hex(KEYSTORE, "zmk.bank_a"), *seen]
    for secret in secrets:
        assert secret not in logged and secret.lower() not in logged
        assert secret.encode() not in stored and bytes.fromhex(secret) not in stored


# -- configuration ------------------------------------------------------------------------

def test_an_issuer_file_asks_for_macs_with_its_zak(tmp_path):
    path = tmp_path / "bank.toml"
    section = f'[issuer]\nname = "bank"\nkeys = "{DEMO_KEYS}"\nlmk_file = "{DEMO_LMK}"\nmac = true\n'
    path.write_text(section + 'zak = "zak.bank_a"\nzmk = "zmk.bank_a"\nmac_failure = "drop"\n')
    macs = load_issuer_file(path)[0].macs
    assert macs is not None and macs.drop and macs.zak == KEYSTORE.encrypted("zak.bank_a")
    path.write_text(section)
    with pytest.raises(ConfigError, match="issuer.zak: the name of a ZAK"):
        load_issuer_file(path)


def test_an_issuer_with_mac_needs_a_zak_in_the_key_store(tmp_path):
    path = write_switch_with_zpk(tmp_path)
    path.write_text(path.read_text() + "mac = true\n")
    with pytest.raises(ConfigError, match=r"issuers\[0\]\.zak: a value \(the name of a ZAK key"):
        load_config(path)
    path.write_text(path.read_text() + 'zak = "zpk.bank_b"\n')
    with pytest.raises(ConfigError, match=r"issuers\[0\]\.zak: the name of a ZAK key"):
        load_config(path)
