"""The event loop's lag, as `admin status` and the log report it: a stall of the loop is seen."""

from __future__ import annotations

import time

from conftest import make_bank, read_events, start_issuer, toml_text, until
from switch.admin import status
from switch.config import load_config
from switch.looplag import MINUTE, STALL_MS, LoopLag
from switch.service import Switch


def test_the_worst_lag_is_kept_for_the_last_minute_or_two_and_stalls_are_counted(log_file):
    lag = LoopLag()
    lag.record(3.0, now=100.0)
    lag.record(STALL_MS + 30, now=110.0)
    lag.record(STALL_MS + 10, now=110.5)  # counted, but not logged again within a second
    assert lag.status() == {"worst_ms": STALL_MS + 30, "stalls": 2}
    lag.record(2.0, now=100.0 + MINUTE + 1)  # a new minute: the last one's worst still shows
    assert lag.status()["worst_ms"] == STALL_MS + 30
    lag.record(1.0, now=100.0 + 2 * MINUTE + 2)  # and then it is forgotten
    assert lag.status() == {"worst_ms": 2.0, "stalls": 2}
    stalled = [e for e in read_events(log_file) if e["event"] == "event_loop_stalled"]
    assert [e["lag_ms"] for e in stalled] == [STALL_MS + 30]


async def test_a_switch_reports_a_stall_of_its_event_loop(nursery, tmp_path, log_file):
    port = await start_issuer(nursery, make_bank({"pan": "4761730000000011"}))
    config = tmp_path / "switch.toml"
    config.write_text(toml_text({"switch": {"data_dir": str(tmp_path / "data")},
                                 "listeners": [{"name": "terminals", "port": 0}],
                                 "issuers": [{"name": "bank", "port": port}],
                                 "routes": [{"prefix": "4", "issuer": "bank"}]}))
    switch = Switch(load_config(config))
    await nursery.start(switch.run)
    await switch.wait_links_up()  # start-up done
    before = status(switch)["loop_lag"]["stalls"]  # a busy machine may have caused some
    time.sleep(0.3)  # what a blocking call on the event loop would do (real time: MockClock would not see it)
    await until(lambda: status(switch)["loop_lag"]["stalls"] > before)  # its next look
    lag = status(switch)["loop_lag"]
    assert lag["stalls"] >= before + 1 and lag["worst_ms"] >= 150
    assert [e for e in read_events(log_file) if e["event"] == "event_loop_stalled"]
