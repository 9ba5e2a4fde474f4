"""Every shipped dialect, end to end: a terminal and an issuer speaking it through the switch, and
every tool a QA team points at its traffic (capture, decode, sanitize, replay, load).

One network per dialect, in process over loopback: the terminal emulator (capturing what it sends
and receives) -> a listener in the dialect -> the switch -> a link in the dialect -> the issuer
emulator in the dialect. A new file in specs/dialects is tested here without a line of its own.
"""

from __future__ import annotations

import json
from functools import partial

import pytest
import trio

from conftest import log_text, make_bank, read_events, serve_switch, write_config
from emulators.issuer import IssuerHostConfig, serve_issuer
from emulators.terminal import open_terminal
from switch.capture.record import unframe
from switch.capture.sanitize import Sanitizer
from switch.capture.sink import open_capture
from switch.cli import main as cardswitch_main
from switch.config import load_config
from switch.errors import ConfigError
from switch.wire.dialect import DIALECTS_DIR, load_dialect
from switch.wire.message import Message
from tools.capture.jsonl import read_jsonl
from tools.load.mix import Card, Mix
from tools.load.runner import LoadRun, LoadSettings
from tools.replay.engine import ReplayOptions, replay
from tools.replay.plan import build_plan

DIALECTS = sorted(path.stem for path in DIALECTS_DIR.glob("*.toml"))
APPROVE, DECLINE, EXPIRY = "4761730000000011", "4761730000000029", "3012"


async def start_network(nursery, tmp_path, dialect: str):
    bank = make_bank({"pan": APPROVE, "balance": 10_000_000}, {"pan": DECLINE, "balance": 100})
    issuer = IssuerHostConfig(name="bank", host="127.0.0.1", port=0, dialect=load_dialect(dialect))
    issuer_port = await nursery.start(serve_issuer, issuer, bank)
    config = write_config(tmp_path / "switch.toml",
                          issuers=[{"name": "bank", "port": issuer_port, "dialect": dialect, "sign_on": True}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0, "dialect": dialect}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    return bank, ports["terminals"]


@pytest.mark.parametrize("name", DIALECTS)
async def test_the_dialect_carries_a_day_of_traffic_and_every_tool_reads_it(nursery, tmp_path, log_file, capsys,
                                                                            name):
    # (log_file before capsys: the log must go to its file, not to the stream capsys swaps in)
    dialect = load_dialect(name)
    bank, port = await start_network(nursery, tmp_path, name)

    capture_path = tmp_path / "terminal.jsonl"
    capture = open_capture(capture_path)
    async with open_terminal("127.0.0.1", port, dialect=dialect, capture=capture) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        approved = await terminal.send(purchase)
        declined = await terminal.purchase(pan=DECLINE, amount=5000, expiry=EXPIRY)
        reversed_ = await terminal.reverse(purchase)
        echoed = await terminal.echo()
    capture.close()
    assert [approved["39"], declined["39"], reversed_["39"], echoed["39"]] == ["00", "51", "00", "00"]
    assert (approved.mti, approved["4"], approved["11"]) == ("0210", "000000001500", purchase["11"])
    assert bank.accounts[APPROVE].balance == 10_000_000  # bought, then reversed

    # capture: every frame the terminal saw, readable again in its dialect, headers included
    frames = read_jsonl(capture_path)
    assert [f.direction for f in frames] == ["in", "out"] * 4  # as the switch sees them
    for frame in frames:
        unframed = unframe(dialect, frame.data)
        assert len(unframed.header) >= dialect.framing.header.min_size
        dialect.decode(unframed.payload)

    # decode: the CLI names every field of a captured request and masks the PAN
    request_file = tmp_path / "request.bin"
    request_file.write_bytes(frames[0].data)
    assert cardswitch_main(["decode", str(request_file), "--dialect", name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    read = shown.get("as_1987", shown)  # a 1993 dialect shows the wire's 1200, then what the switch reads
    assert read["mti"] == "0200" and APPROVE not in json.dumps(shown)
    assert {"2", "4", "11", "41"} <= {f["field"] for f in shown["fields"]}

    # sanitize: the same frames with test PANs, still framed and decodable in the dialect
    sanitizer = Sanitizer(key=b"k" * 32)
    for frame in frames:
        clean = sanitizer.frame(dialect, frame.data)
        assert clean is not None
        assert dialect.decode(unframe(dialect, clean).payload).get("2") != APPROVE

    # replay: the captured session against the live switch, every answer as captured
    results = await replay(build_plan(frames),
                           ReplayOptions(host="127.0.0.1", port=port, timeout=5.0))
    assert len(results) == 4 and {r.status for r in results} == {"matched"}, [(r.status, r.diffs, r.note)
                                                                             for r in results]

    # load: the load generator speaks the dialect too
    cards = [Card(APPROVE, EXPIRY, "bank", balance=10_000_000)]
    mix = Mix({"purchase": 3, "reversal": 1}, {"purchase": cards, "reversal": cards})
    run = await LoadRun(LoadSettings(host="127.0.0.1", port=port, dialect=name, connections=2, duration=None,
                                     count=20, timeout=5.0, grace=1.0, tid_prefix="D"), mix).run()
    assert (run.sent, run.lost) == (run.answered, 0) and run.answered >= 20

    # and in no dialect does a full card number reach the switch's log
    assert sum(event["event"] == "txn" for event in read_events(log_file)) >= 24
    assert APPROVE not in log_text(log_file) and DECLINE not in log_text(log_file)



VISA_REQUEST = bytes.fromhex("160102" "0000" "000123" "000456" + "00" * 11)  # to station 000123 from 000456
VISA_REPLY = bytes.fromhex("160102" "0000" "000456" "000123" + "00" * 11)  # length bytes compared apart


@pytest.mark.parametrize("name, sent, answered", [
    ("pos-tpdu", bytes.fromhex("6000070009"), bytes.fromhex("6000090007")),
    ("visa-base1", VISA_REQUEST, VISA_REPLY),
    ("base24", b"ISO026000050", b"ISO026000057"),
])
async def test_a_reply_carries_the_network_header_its_dialect_makes_of_the_request(nursery, tmp_path, name, sent,
                                                                                    answered):
    dialect = load_dialect(name)
    _, port = await start_network(nursery, tmp_path, name)
    request = Message("0800", {"7": "1201101010", "11": "000001", "41": "T0000001", "70": "301"})
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(dialect.frame(request, sent))
        framer = dialect.framer()
        frames = []
        while not frames:
            frames = framer.feed(await stream.receive_some(4096))
    header, payload = frames[0].header, frames[0].payload
    if name == "visa-base1":  # Visa's header carries the whole message's length, the reply's own
        assert int.from_bytes(header[3:5], "big") == len(header) + len(payload)
        header = header[:3] + b"\x00\x00" + header[5:]
    assert header == answered
    assert dialect.decode(payload)["39"] == "00"


@pytest.mark.parametrize("dialect, key, value, expected", [
    ("iso87-binary", "header", "6000000000", "issuers[0].header: nothing: dialect iso87-binary has no network header"),
    ("pos-tpdu", "tpdu", "60000000", "issuers[0].tpdu: hex digits: a tpdu header for dialect pos-tpdu (TPDU must be 5"),
    ("visa-base1", "header", "15" + "00" * 21, "issuers[0].header: hex digits: a visa header for dialect visa-base1"),
    ("base24", "header", "XYZ", "issuers[0].header: hex digits: a base24 header"),
])
def test_an_issuers_network_header_that_its_dialect_cannot_send_is_one_line(tmp_path, dialect, key, value, expected):
    config = write_config(tmp_path / "switch.toml",
                          issuers=[{"name": "bank", "port": 9, "dialect": dialect, key: value}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    with pytest.raises(ConfigError) as raised:
        load_config(config, data_dir=tmp_path / "data")
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_an_older_config_with_a_tpdu_on_a_link_without_one_still_loads(tmp_path):
    """`tpdu` was read on every link and used where the dialect had a TPDU (the README's example
    set it on an iso87-binary link): it stays harmless there."""
    config = write_config(tmp_path / "switch.toml",
                          issuers=[{"name": "bank", "port": 9, "dialect": "iso87-binary", "tpdu": "6000000000"}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    assert load_config(config, data_dir=tmp_path / "data").issuers[0].header == b""


def test_an_issuer_link_sends_its_configured_network_header(tmp_path):
    config = write_config(tmp_path / "switch.toml",
                          issuers=[{"name": "bank", "port": 9, "dialect": "visa-base1",
                                    "header": VISA_REQUEST.hex()}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    [issuer] = load_config(config, data_dir=tmp_path / "data").issuers
    assert issuer.header[5:11] == bytes.fromhex("000123000456")


async def test_a_visa_reject_header_is_logged_and_the_request_ends_as_unanswered(nursery, tmp_path, log_file):
    """A network that sends one of our requests back under a reject header: logged with its reject
    code, and the request ends at once as unanswered (91, reversed through SAF), never as answered
    and without waiting out the issuer's timeout."""
    dialect = load_dialect("visa-base1")

    async def rejecting_network(stream: trio.SocketStream) -> None:
        framer = dialect.framer()
        while data := await stream.receive_some(4096):
            for frame in framer.feed(data):
                reject = bytes([26]) + frame.header[1:22] + bytes.fromhex("8000" "0012")
                await stream.send_all(dialect.framing.frame(frame.payload, reject))

    listener = (await nursery.start(partial(trio.serve_tcp, rejecting_network, 0, host="127.0.0.1")))[0]
    config = write_config(tmp_path / "switch.toml",
                          issuers=[{"name": "visa", "port": listener.socket.getsockname()[1],
                                    "dialect": "visa-base1", "timeout_ms": 30000}],
                          routes=[{"prefix": "4", "issuer": "visa"}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    async with open_terminal("127.0.0.1", ports["terminals"]) as terminal:
        with trio.fail_after(5):  # well inside the issuer's 30 s
            answer = await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY)
    assert answer["39"] == "91"
    assert [e["reject_code"] for e in read_events(log_file) if e["event"] == "network_reject"][:1] == ["0012"]
