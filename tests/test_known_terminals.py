"""Known terminals over real loopback sockets: a listener that names its terminals and acquirers
answers anyone else 58, logs it once (`terminal_refused`) and forwards nothing; a connection is
bound to its first terminal (or to its client certificate's subject); a listener without such
lists takes any terminal id, as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from conftest import Pki, journal_rows, make_bank, read_events, serve_switch, start_issuer, write_config
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.tls import TlsConfig, TlsEndpoint

APPROVE = "4761730000000011"
EXPIRY = "3012"
KNOWN = [{"tid": "T0000001"}, {"tid": "T0000002"}]


async def start_switch(nursery, tmp_path: Path, **listener) -> int:
    """One listener (`listener` keys on top of name and port) before an issuer approving APPROVE."""
    issuer_port = await start_issuer(nursery, make_bank({"pan": APPROVE}))
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0, "acquirer_id": "100001", **listener}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    return ports["terminals"]


def refusals(log_file: Path) -> list[dict]:
    return [e for e in read_events(log_file) if e["event"] == "terminal_refused"]


def rows(tmp_path: Path) -> list[tuple]:
    return [(row["tid"], row["rc"], row["issuer"], row["reason"]) for row in journal_rows(tmp_path / "data")]


async def test_an_unknown_terminal_gets_58_and_nothing_is_forwarded(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path, only_known_terminals=True, terminals=KNOWN)
    async with open_terminal("127.0.0.1", port, tid="T0000009") as stranger:
        assert (await stranger.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "58"
        assert (await stranger.echo())["39"] == "58"  # network management too
    async with open_terminal("127.0.0.1", port, tid="T0000001") as known:
        assert (await known.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
        assert (await known.echo())["39"] == "00"
    await trio.sleep(0.1)  # the journal's writer
    assert rows(tmp_path)[:2] == [("T0000009", "58", None, "terminal not known on this listener")] * 2
    assert rows(tmp_path)[2][:3] == ("T0000001", "00", "bank")
    refused = refusals(log_file)
    assert len(refused) == 2 and refused[0]["listener"] == "terminals" and refused[0]["tid"] == "T0000009"
    assert refused[0]["peer"].startswith("127.0.0.1:") and refused[0]["reason"] == "terminal not known on this listener"


async def test_an_acquirer_not_allowed_gets_58(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path, allowed_acquirers=["100001"])
    async with open_terminal("127.0.0.1", port, tid="T0000042") as terminal:
        other = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY, extra={"32": "999999"})
        assert (await terminal.send(other))["39"] == "58"
        own = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY, extra={"32": "100001"})
        assert (await terminal.send(own))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"  # the listener's own
    [refused] = refusals(log_file)
    assert refused["reason"] == "acquirer (field 32) not allowed on this listener"


async def test_a_connection_is_bound_to_its_first_terminal(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path, only_known_terminals=True, terminals=KNOWN)
    async with open_terminal("127.0.0.1", port, tid="T0000001") as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
        other = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY, extra={"41": "T0000002"})
        assert (await terminal.send(other))["39"] == "58"
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    async with open_terminal("127.0.0.1", port, tid="T0000002") as terminal:  # its own connection: fine
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    [refused] = refusals(log_file)
    assert (refused["tid"], refused["reason"]) == ("T0000002", "connection bound to another terminal")


async def test_a_terminal_must_come_with_its_certificate(nursery, tmp_path, pki, log_file):
    cert, key = pki.issue("switch")
    port = await start_switch(
        nursery, tmp_path, only_known_terminals=True,
        tls={"cert": str(cert), "key": str(key), "ca": str(pki.ca), "client_certs": "optional"},
        terminals=[{"tid": "T0000001", "subject": "pos-T0000001"}, {"tid": "T0000002", "subject": "pos-T0000002"}])

    def presenting(name: str | None) -> TlsEndpoint:
        cert, key = pki.issue(name) if name else (None, None)
        return TlsEndpoint(TlsConfig(ca=pki.ca, cert=cert, key=key), server_side=False)

    async def rc(tid: str, tls: TlsEndpoint) -> str:
        async with open_terminal("127.0.0.1", port, tid=tid, tls=tls) as terminal:
            return (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"]

    assert await rc("T0000001", presenting("pos-T0000001")) == "00"
    assert await rc("T0000001", presenting("pos-T0000002")) == "58"  # another terminal's certificate
    assert await rc("T0000001", presenting(None)) == "58"
    assert [r["reason"] for r in refusals(log_file)] == [
        "client certificate subject does not match the terminal's",
        "no client certificate, and the terminal must present one"]


async def test_a_terminal_must_come_from_its_addresses(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path, terminals=[{"tid": "T0000001", "peer": "10.0.0.0/8"},
                                                            {"tid": "T0000002", "peer": ["192.0.2.1", "127.0.0.1"]}])
    async with open_terminal("127.0.0.1", port, tid="T0000001") as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "58"
    async with open_terminal("127.0.0.1", port, tid="T0000002") as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    async with open_terminal("127.0.0.1", port, tid="T0000003") as terminal:  # not listed, not refused
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    assert [r["reason"] for r in refusals(log_file)] == ["peer address not allowed for this terminal"]


async def test_a_listener_without_lists_takes_any_terminal(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path)
    for tid in ("T0000001", "ANYONE01"):
        async with open_terminal("127.0.0.1", port, tid=tid) as terminal:
            assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
            other = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY, extra={"41": "OTHER001"})
            assert (await terminal.send(other))["39"] == "00"
    assert refusals(log_file) == []


@pytest.mark.parametrize("listener, key, expected", [
    ({"only_known_terminals": True}, "listeners[0].only_known_terminals",
     "[[listeners.terminals]] tables naming the terminals it knows"),
    ({"terminals": [{"tid": "T1", "subject": "pos-1"}]}, "listeners[0].terminals[0].subject",
     'a listener asking for client certificates ([listeners.tls] client_certs = "optional" or "required")'),
    ({"terminals": [{"tid": "T1", "peer": "10.0.0.300"}]}, "listeners[0].terminals[0].peer",
     "an IP address or network (CIDR, e.g. 10.1.0.0/16), or an array of them"),
    ({"terminals": [{"tid": "T1"}, {"tid": "T1"}]}, "listeners[0].terminals[1].tid",
     "a terminal id not listed before on this listener, not 'T1' again"),
    ({"allowed_acquirers": ["ABC"]}, "listeners[0].allowed_acquirers",
     "an array of acquirer ids (field 32), 1 to 11 digits"),
])
def test_known_terminal_mistakes_name_the_key(tmp_path, listener, key, expected):
    config = write_config(tmp_path / "switch.toml", issuers=[], routes=[],
                          listeners=[{"name": "terminals", "port": 0, **listener}])
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert (error.value.key, error.value.expected) == (key, expected)


def test_a_terminal_table_may_name_no_tpk(tmp_path):
    config = write_config(tmp_path / "switch.toml", issuers=[], routes=[],
                          listeners=[{"name": "terminals", "port": 0, "terminals": KNOWN}])
    listener = load_config(config).listeners[0]
    assert listener.tpk_for("T0000001") is None and listener.known is None  # listed, but nothing to check
