"""Terminal connections under faults, over real loopback sockets: idle connections and frames
that never complete (slow loris) are closed, each with one logged reason; beyond a listener's
`max_connections` new connections are refused while those already open are served. Short real
timeouts; nothing here measures time."""

from __future__ import annotations

import pytest
import trio

from conftest import make_bank, read_events, serve_switch, start_issuer, write_config
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.wire.dialect import load_dialect
from switch.wire.message import Message

FAST, SLOW = "4761730000000011", "4761730000000052"
EXPIRY = "3012"


async def start_switch(nursery, tmp_path, **listener) -> int:
    """A switch with one listener (`listener` keys on top of name and port) before one issuer,
    whose card SLOW is answered after 900 ms; returns the listener's port."""
    issuer_port = await start_issuer(nursery, make_bank({"pan": FAST}, {"pan": SLOW, "latency_ms": 900}))
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0, **listener}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    return ports["terminals"]


async def closed_by_switch(stream: trio.SocketStream) -> bool:
    """Read until the switch closes the connection (True); a guard keeps a broken switch from
    hanging the test (False)."""
    with trio.move_on_after(20):
        while True:
            try:
                if await stream.receive_some(4096) == b"":
                    return True
            except trio.BrokenResourceError:  # reset: closed too
                return True
    return False


def disconnects(log_file) -> list[str]:
    return [e["reason"] for e in read_events(log_file) if e["event"] == "terminal_disconnected"]


async def test_an_idle_connection_is_closed_with_its_reason(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path, idle_timeout_ms=250)
    async with await trio.open_tcp_stream("127.0.0.1", port) as silent:
        assert await closed_by_switch(silent)
    async with open_terminal("127.0.0.1", port) as terminal:  # idle counts from the last answer
        assert (await terminal.purchase(pan=FAST, amount=100, expiry=EXPIRY))["39"] == "00"
    reasons = disconnects(log_file)
    assert reasons[0] == "idle timeout: nothing in flight or received for 250 ms"


async def test_a_request_in_flight_at_a_slow_issuer_keeps_its_connection(nursery, tmp_path, log_file):
    """The issuer takes 900 ms, far beyond the 250 ms idle timeout: the connection stays until the
    answer is out, and is closed as idle only after it."""
    port = await start_switch(nursery, tmp_path, idle_timeout_ms=250)
    dialect = load_dialect()
    async with open_terminal("127.0.0.1", port) as terminal:  # only to build the request
        request = terminal.card_request("0200", pan=SLOW, amount=100, expiry=EXPIRY)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(dialect.frame(request))
        framer = dialect.framer()
        frames: list = []
        with trio.fail_after(20):
            while not frames:
                data = await stream.receive_some(4096)
                assert data, "closed while the request was at the issuer"
                frames = framer.feed(data)
        assert dialect.decode(frames[0].payload)["39"] == "00"
        assert await closed_by_switch(stream)
    assert disconnects(log_file) == ["closed by terminal", "idle timeout: nothing in flight or received for 250 ms"]


async def test_a_frame_trickling_in_is_closed_after_the_frame_timeout(nursery, tmp_path, log_file):
    """One byte every 50 ms keeps the connection from being idle (1 s), but the frame, started,
    does not complete within 300 ms."""
    port = await start_switch(nursery, tmp_path, idle_timeout_ms=1000, frame_timeout_ms=300)
    frame = load_dialect().frame(Message("0800", {"7": "0101000000", "11": "000001", "70": "301"}))
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:

        async def trickle() -> None:
            try:
                for byte in frame:
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.05)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async with trio.open_nursery() as sending:
            sending.start_soon(trickle)
            assert await closed_by_switch(stream)
            sending.cancel_scope.cancel()
    assert disconnects(log_file) == ["frame timeout: a frame incomplete 300 ms after its first byte"]


async def test_beyond_max_connections_new_ones_are_refused_and_the_first_still_served(nursery, tmp_path, log_file):
    port = await start_switch(nursery, tmp_path, max_connections=2)
    async with open_terminal("127.0.0.1", port, tid="T0000001") as one, \
            open_terminal("127.0.0.1", port, tid="T0000002") as two:
        assert (await one.purchase(pan=FAST, amount=100, expiry=EXPIRY))["39"] == "00"
        for _ in range(3):
            async with await trio.open_tcp_stream("127.0.0.1", port) as refused:
                assert await closed_by_switch(refused)
        assert (await one.purchase(pan=FAST, amount=100, expiry=EXPIRY))["39"] == "00"
        assert (await two.purchase(pan=FAST, amount=100, expiry=EXPIRY))["39"] == "00"
    async with open_terminal("127.0.0.1", port) as later:  # the slots are free again
        assert (await later.purchase(pan=FAST, amount=100, expiry=EXPIRY))["39"] == "00"
    refusals = [e for e in read_events(log_file) if e["event"] == "connection_refused"]
    assert 1 <= len(refusals) < 3  # at most one line a second
    assert (refusals[0]["listener"], refusals[0]["limit"], refusals[0]["refused"]) == ("terminals", 2, 1)
    assert "terminals" in {e["listener"] for e in read_events(log_file) if e["event"] == "terminal_disconnected"}


@pytest.mark.parametrize("key, value, expected", [
    ("idle_timeout_ms", 0, "milliseconds, at least 1"),
    ("frame_timeout_ms", "10s", "milliseconds, at least 1"),
    ("max_connections", 0, "an integer, at least 1"),
])
def test_connection_limits_in_the_config_are_checked(tmp_path, key, value, expected):
    config = write_config(tmp_path / "switch.toml", issuers=[], routes=[],
                          listeners=[{"name": "terminals", "port": 0, key: value}])
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value) == f"{config}: listeners[0].{key}: {expected}"


def test_connection_limits_default(tmp_path):
    config = load_config(write_config(tmp_path / "switch.toml", issuers=[], routes=[]))
    listener = config.listeners[0]
    assert (listener.idle_timeout, listener.frame_timeout, listener.max_connections) == (300.0, 10.0, 1000)
