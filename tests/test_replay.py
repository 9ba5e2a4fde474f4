"""Replay end to end: captures recorded against the demo network, replayed against it over real
sockets by the `cardswitch replay` process, compared field by field."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import trio

from emulators.terminal import open_terminal
from switch.capture.sink import open_capture
from switch.wire.dialect import load_dialect
from switch.wire.message import Message
from tools.capture.jsonl import read_jsonl
from tools.replay.rewrite import Rewriter, map_back

APPROVE, DECLINE = "4761730000000011", "4761730000000029"
EXPIRY = "3012"
DIALECT = load_dialect("iso87-binary")


async def cardswitch(*args: str) -> tuple[int, str, str]:
    result = await trio.run_process([sys.executable, "-m", "switch.cli", *args], check=False,
                                    capture_stdout=True, capture_stderr=True)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def record_session(port: int, path: Path) -> Path:
    """A terminal session worth replaying: approvals, a decline, a purchase and its reversal,
    an echo, and a second connection running at the same time."""
    capture = open_capture(path)
    async with open_terminal("127.0.0.1", port, capture=capture) as one, \
            open_terminal("127.0.0.1", port, capture=capture, tid="T0000002") as two:
        purchase = one.card_request("0200", pan=APPROVE, amount=1500, expiry=EXPIRY)
        assert (await one.send(purchase))["39"] == "00"
        assert (await two.authorize(pan="5200000000000015", amount=700, expiry=EXPIRY))["39"] == "00"
        assert (await one.purchase(pan=DECLINE, amount=5000, expiry=EXPIRY))["39"] == "51"
        assert (await one.reverse(purchase))["39"] == "00"
        assert (await two.echo())["39"] == "00"
    capture.close()
    return path


async def test_terminal_capture_replays_with_everything_matched(demo, tmp_path):
    capture = await record_session(demo.ports["terminals"], tmp_path / "session.jsonl")
    junit = tmp_path / "junit.xml"
    code, out, err = await cardswitch("replay", str(capture), "--target", f"127.0.0.1:{demo.ports['terminals']}",
                                      "--junit", str(junit))
    assert code == 0, out + err
    assert "total" in out and " 5 " in out.splitlines()[-2]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "0", "0")
    assert APPROVE not in out + err + junit.read_text()


async def test_switch_capture_replays_with_everything_matched(nursery, tmp_path, log_file):
    from emulators.network import start_network

    capture = open_capture(tmp_path / "switch.jsonl")
    network = await start_network(nursery, tmp_path / "data", capture=capture)
    port = network.ports["terminals"]
    await record_session(port, tmp_path / "terminal.jsonl")
    capture.close()
    frames = read_jsonl(tmp_path / "switch.jsonl")
    assert {f.connection for f in frames} == {"terminals-1", "terminals-2"}
    assert [f.direction for f in frames].count("in") == 5
    code, out, err = await cardswitch("replay", str(tmp_path / "switch.jsonl"), "--target", f"127.0.0.1:{port}",
                                      "--original-timing")
    assert code == 0, out + err


def edit_captured_answer(path: Path, field: str, value: str) -> None:
    """Change `field` in the first captured answer, as if the switch had answered differently."""
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        item = json.loads(line)
        if item["direction"] == "out":
            message = DIALECT.decode(bytes.fromhex(item["hex"])[2:])
            message[field] = value
            item["hex"] = DIALECT.frame(message).hex()
            lines[number] = json.dumps(item)
            break
    path.write_text("\n".join(lines) + "\n")


async def test_a_changed_answer_is_a_mismatch_naming_the_field(demo, tmp_path):
    capture = await record_session(demo.ports["terminals"], tmp_path / "session.jsonl")
    edit_captured_answer(capture, "39", "05")
    junit = tmp_path / "junit.xml"
    code, out, err = await cardswitch("replay", str(capture), "--target", f"127.0.0.1:{demo.ports['terminals']}",
                                      "--junit", str(junit))
    assert code == 1
    assert "MISMATCHED" in out and "field 39 (Response Code): expected 05, got 00" in out
    assert "476173******0011" in out and APPROVE not in out + err
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "fields differ: 39"


async def test_rules_and_the_ignore_set(demo, tmp_path):
    capture = await record_session(demo.ports["terminals"], tmp_path / "session.jsonl")
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rule]]\nfield = "39"\nequals = "00"\npans = ["{DECLINE}"]\n')
    target = f"127.0.0.1:{demo.ports['terminals']}"
    code, out, _ = await cardswitch("replay", str(capture), "--target", target, "--rules", str(rules))
    assert code == 1
    assert "field 39 (Response Code): expected 00, got 51 [rule 1]" in out
    assert "476173******0029" in out and DECLINE not in out
    # Without 38 in the ignore set, fresh approval codes differ from the captured ones.
    code, out, _ = await cardswitch("replay", str(capture), "--target", target, "--ignore", "7,11,12,13,37")
    assert code == 1 and "field 38" in out


async def test_a_silent_target_leaves_requests_unanswered_and_exit_3(demo, tmp_path):
    capture = await record_session(demo.ports["terminals"], tmp_path / "session.jsonl")

    async def swallow(stream):
        async for _ in stream:
            pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, swallow, listeners)
        code, out, _ = await cardswitch("replay", str(capture), "--target", f"127.0.0.1:{port}",
                                        "--timeout", "0.3")
        nursery.cancel_scope.cancel()
    assert code == 3  # no answer at all
    assert "UNANSWERED" in out and "no answer within 0.3 s" in out


async def test_an_unreachable_target_is_one_line_and_exit_3(demo, tmp_path):
    capture = await record_session(demo.ports["terminals"], tmp_path / "session.jsonl")
    code, out, err = await cardswitch("replay", str(capture), "--target", "127.0.0.1:1")
    assert code == 3
    assert err.count("\n") == 1 and err.startswith("cardswitch: error: cannot connect to 127.0.0.1:1")


def test_rewriter_gives_fresh_volatile_fields_and_maps_answers_back():
    rewriter = Rewriter()
    original = Message("0200", {"2": APPROVE, "7": "0101000000", "11": "000001", "12": "000000",
                                "13": "0101", "37": "500100000001", "41": "T0000001"})
    sent, changes = rewriter.rewrite(original)
    assert set(changes) == {"7", "11", "12", "13", "37"}
    assert all(sent[f] != original[f] for f in changes) and sent["2"] == APPROVE
    answer = Message("0210", {**sent.fields, "39": "00"})
    assert map_back(answer, changes).fields == {**original.fields, "39": "00"}
    other_terminal = Message("0200", {**original.fields, "41": "T0000002", "37": "500100000009"})
    rewriter.rewrite(other_terminal)  # same STAN and time on another terminal: no confusion
    reversal = Message("0400", {"11": "000002", "7": "0101000001", "37": "500100000001", "41": "T0000001",
                                "90": "0200" + "000001" + "0101000000" + "0" * 22})
    sent_reversal, _ = rewriter.rewrite(reversal)
    assert sent_reversal["90"] == "0200" + sent["11"] + sent["7"] + "0" * 22
    assert sent_reversal["37"] == sent["37"]


async def test_sanitized_pcapng_conversion_replays_and_holds_no_pan(demo, tmp_path):
    capture = await record_session(demo.ports["terminals"], tmp_path / "session.jsonl")
    shared = tmp_path / "shared.pcapng"
    code, out, err = await cardswitch("capture", "convert", str(capture), str(shared), "--sanitize")
    assert code == 0, err
    assert out.startswith("10 frames written")
    raw = shared.read_bytes()
    assert APPROVE.encode() not in raw and b"5200000000000015" not in raw
    # Test PANs keep the BIN, so the requests still route; the cards are unknown to the issuer.
    code, out, _ = await cardswitch("replay", str(shared), "--target", f"127.0.0.1:{demo.ports['terminals']}",
                                    "--verbose")
    verdicts = [line.split()[0] for line in out.splitlines() if line.split()[:1] in (["MATCHED"], ["MISMATCHED"])]
    assert len(verdicts) == 5
    assert "UNANSWERED" not in out
