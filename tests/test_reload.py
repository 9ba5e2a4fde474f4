"""Reloading the routing table off the event loop: a large table is read and built in a worker
thread while terminals keep being answered, then swapped in at once."""

from __future__ import annotations

import trio

from conftest import make_bank, start_issuer
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.service import Switch
from tools.load.processes import toml_text

APPROVE = "4761730000000011"
ENTRIES = 100_000


async def test_terminals_are_answered_while_a_large_table_is_built(nursery, tmp_path):
    issuer_port = await start_issuer(nursery, make_bank({"pan": APPROVE}))
    routes = tmp_path / "routes.csv"
    routes.write_text("prefix,issuer\n4,bank\n")
    config = tmp_path / "switch.toml"
    config.write_text(toml_text({"switch": {"data_dir": str(tmp_path / "data")}, "routes_file": "routes.csv",
                                 "listeners": [{"name": "terminals", "port": 0}],
                                 "issuers": [{"name": "bank", "port": issuer_port}]}))
    switch = Switch(load_config(config))
    ports = await nursery.start(switch.run)
    await switch.wait_links_up()
    # The same card still routes to bank, now under one of many eight-digit BIN ranges.
    routes.write_text("prefix,issuer\n" + "".join(f"{50_000_000 + n},bank\n" for n in range(ENTRIES))
                      + "4761,bank\n")
    order: list[str] = []

    async def reload() -> None:
        assert (await switch.reload_routing())[0]
        order.append("reloaded")

    async with open_terminal("127.0.0.1", ports["terminals"]) as terminal:
        async with trio.open_nursery() as both:
            both.start_soon(reload)
            await trio.sleep(0.05)  # the table is being read in its thread by now
            assert (await terminal.echo())["39"] == "00"
            order.append("answered")
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry="3012"))["39"] == "00"
    assert order == ["answered", "reloaded"]
    assert len(switch.routing) == ENTRIES + 1
