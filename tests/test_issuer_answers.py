"""What an issuer's answer cannot be trusted to mean is reversed: a field 39 that is no response
code, and an approval for a STAN the switch never sent."""

from __future__ import annotations

from functools import partial

import trio

from conftest import journal_rows, read_events, until, write_config
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.service import Switch
from switch.wire.dialect import load_dialect
from switch.wire.message import Message, response_mti

APPROVE = "4761730000000011"
ECHOED = ("2", "3", "4", "7", "11", "32", "37", "41", "49")


async def lying_issuer(nursery, code: str, unsolicited: bool = False) -> int:
    """An issuer host that answers every 0200 with field 39 = `code` (and acknowledges every
    0420); with `unsolicited`, it first sends an approval for a STAN nobody asked about."""
    dialect = load_dialect()

    async def serve(stream):
        framer = dialect.framer(8192)
        async with stream:
            while data := await stream.receive_some(65536):
                for frame in framer.feed(data):
                    request = dialect.decode(frame.payload)
                    fields = {f: request[f] for f in ECHOED if f in request}
                    if request.mti == "0200" and unsolicited:
                        stray = dict(fields, **{"11": "999999", "39": "00", "38": "STRAY1"})
                        await stream.send_all(dialect.frame(Message("0210", stray), b""))
                    fields["39"] = code if request.mti == "0200" else "00"
                    await stream.send_all(dialect.frame(Message(response_mti(request.mti), fields), b""))

    listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


async def start(nursery, tmp_path, port: int) -> tuple[Switch, int]:
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": port}],
                          routes=[{"prefix": "4", "issuer": "bank"}])
    switch = Switch(load_config(config))
    ports = await nursery.start(switch.run)
    await switch.wait_links_up()
    return switch, ports["terminals"]


async def test_an_answer_whose_field_39_is_no_response_code_is_96_and_reversed(nursery, tmp_path):
    switch, port = await start(nursery, tmp_path, await lying_issuer(nursery, "!!"))
    async with open_terminal("127.0.0.1", port) as terminal:
        response = await terminal.purchase(pan=APPROVE, amount=100, expiry="3012")
    assert response["39"] == "96"
    await until(lambda: not switch.saf.pending("bank"))
    await switch.journal.flush()
    row, = journal_rows(switch.config.data_dir)
    assert (row["state"], row["rc"]) == ("failed", "96")
    saf = journal_rows(switch.config.data_dir, "SELECT kind, status FROM saf")
    assert [(s["kind"], s["status"]) for s in saf] == [("timeout_reversal", "acknowledged")]


async def test_an_approval_for_a_stan_the_switch_never_sent_is_reversed_with_a_warning(nursery, tmp_path, log_file):
    switch, port = await start(nursery, tmp_path, await lying_issuer(nursery, "00", unsolicited=True))
    async with open_terminal("127.0.0.1", port) as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry="3012"))["39"] == "00"
    await until(lambda: [e for e in read_events(log_file) if e["event"] == "saf_acknowledged"])
    await switch.journal.flush()
    assert [e["stan"] for e in read_events(log_file) if e["event"] == "unknown_approval_reversed"] == ["999999"]
    saf = journal_rows(switch.config.data_dir, "SELECT kind, status FROM saf")
    assert [(s["kind"], s["status"]) for s in saf] == [("unknown_approval_reversal", "acknowledged")]
