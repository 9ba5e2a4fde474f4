"""The Prometheus endpoint: a switch with `metrics_port` answers GET /metrics with its counters,
labelled only from bounded sets and never with card data."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from conftest import make_bank, start_issuer
from emulators.terminal import open_terminal
from switch.config import load_config
from switch.errors import ConfigError
from switch.service import Switch
from switch.workers import worker_config
from tools.load.processes import free_port, free_ports, toml_text

APPROVE = "4761730000000011"
DECLINE = "4761730000000029"  # balance 0.10: insufficient funds
EXPIRY = "3012"


def _config(path: Path, issuer_port: int, **switch) -> Path:
    path.write_text(toml_text({
        "switch": {"data_dir": str(path.parent / "data"), **switch},
        "listeners": [{"name": "terminals", "port": 0}],
        "issuers": [{"name": "bank", "port": issuer_port}],
        "routes": [{"prefix": "4", "issuer": "bank"}],
    }))
    return path


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_scrape_counts_transactions_with_bounded_labels_and_no_card_data(nursery, tmp_path):
    bank = make_bank({"pan": APPROVE}, {"pan": DECLINE, "balance": 10})
    issuer_port = await start_issuer(nursery, bank)
    config = _config(tmp_path / "switch.toml", issuer_port, metrics_port=0)
    (tmp_path / "risk.toml").write_text(toml_text({"rules": [
        {"name": "big", "kind": "amount", "max_amount": 1000, "action": "flag"}]}))
    config.write_text(config.read_text() + '\n[risk]\nrules = "risk.toml"\n')
    switch = Switch(load_config(config))
    ports = await nursery.start(switch.run)
    await switch.wait_links_up()
    async with open_terminal("127.0.0.1", ports["terminals"]) as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
        assert (await terminal.purchase(pan=DECLINE, amount=5000, expiry=EXPIRY))["39"] == "51"

    status, content_type, text = await trio.to_thread.run_sync(_get, f"http://127.0.0.1:{ports['metrics']}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    samples = _samples(text)

    def counted(rc: str) -> float:
        labels = (("issuer", "bank"), ("listener", "terminals"), ("mti", "0200"), ("rc", rc))
        return samples[("cardswitch_transactions_total", labels)]

    assert counted("00") == 1 and counted("51") == 1
    assert samples[("cardswitch_transaction_duration_seconds_count", ())] == 2
    assert samples[("cardswitch_issuer_round_trip_seconds_count", (("issuer", "bank"),))] == 2
    assert samples[("cardswitch_issuer_link_up", (("issuer", "bank"),))] == 1
    assert samples[("cardswitch_issuer_link_in_flight", (("issuer", "bank"),))] == 0
    assert samples[("cardswitch_issuer_link_unmatched_responses_total", (("issuer", "bank"),))] == 0
    assert samples[("cardswitch_saf_backlog", (("issuer", "bank"),))] == 0
    assert samples[("cardswitch_saf_parked", (("issuer", "bank"),))] == 0
    assert samples[("cardswitch_in_flight", ())] == 0
    assert samples[("cardswitch_shed_total", ())] == 0
    assert samples[("cardswitch_journal_batches_total", ())] >= 1
    assert ("cardswitch_event_loop_lag_worst_seconds", ()) in samples
    assert samples[("cardswitch_risk_decisions_total", (("action", "flag"), ("rule", "big")))] == 1
    assert samples[("cardswitch_risk_memory_keys", ())] == 0
    for pan in (APPROVE, DECLINE):
        assert pan not in text and pan[6:] not in text  # not the PAN, not its middle and end either
    allowed = {"mti", "rc", "issuer", "listener", "le", "rule", "action"}
    assert {label for _, labels in samples for label, _ in labels} <= allowed

    status, _, _ = await trio.to_thread.run_sync(_get, f"http://127.0.0.1:{ports['metrics']}/other")
    assert status == 404

    # docs/metrics.md documents every metric the switch exposes; the dashboard uses only those
    exposed = {name for name, _ in samples}
    docs = Path(__file__).parent.parent / "docs"
    documented = set(re.findall(r"`(cardswitch_[a-z_]+)`", (docs / "metrics.md").read_text()))
    histograms = {"cardswitch_transaction_duration_seconds", "cardswitch_issuer_round_trip_seconds"}
    assert documented == {n for n in exposed if not n.endswith(("_bucket", "_count", "_sum"))} | histograms
    used = set(re.findall(r"cardswitch_[a-z_]+", (docs / "grafana-cardswitch.json").read_text())) - {"cardswitch"}
    assert used and used <= exposed


async def test_garbage_mti_is_counted_as_other(nursery, tmp_path):
    """A frame misaligned so that card digits sit where the MTI goes is not a label value."""
    issuer_port = await start_issuer(nursery, make_bank({"pan": APPROVE}))
    switch = Switch(load_config(_config(tmp_path / "switch.toml", issuer_port, metrics_port=0)))
    ports = await nursery.start(switch.run)
    await switch.wait_links_up()
    async with open_terminal("127.0.0.1", ports["terminals"]) as terminal:
        request = terminal.card_request("0200", pan=APPROVE, amount=100, expiry=EXPIRY)
        request.mti = "4761"
        assert (await terminal.send(request))["39"] in ("12", "30")
    _, _, text = await trio.to_thread.run_sync(_get, f"http://127.0.0.1:{ports['metrics']}/metrics")
    assert 'mti="other"' in text and "4761" not in text


async def test_metrics_port_in_use_is_a_config_error(nursery, tmp_path):
    issuer_port = await start_issuer(nursery, make_bank({"pan": APPROVE}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        switch = Switch(load_config(_config(tmp_path / "switch.toml", issuer_port, metrics_port=port)))
        with pytest.raises(BaseException) as raised:
            await nursery.start(switch.run)
    error = raised.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, ConfigError) and "switch.metrics_port" in str(error)


def test_serve_with_metrics_port_in_use_exits_2_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = _config(tmp_path / "switch.toml", 1, metrics_port=taken.getsockname()[1])
        done = subprocess.run([sys.executable, "-m", "switch.cli", "serve", "--config", str(config),
                               "--log-file", str(tmp_path / "log")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.startswith("cardswitch: error:") and "switch.metrics_port" in err and "\n" not in err


@pytest.mark.parametrize("value, expected", [(70000, "a port number from 0 to 65535"),
                                             ("9100", "a port number from 0 to 65535")])
def test_bad_metrics_port_names_file_key_and_expectation(tmp_path, value, expected):
    config = _config(tmp_path / "switch.toml", 1, metrics_port=value)
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert str(config) in str(raised.value) and "metrics_port" in str(raised.value)
    assert expected in str(raised.value)


def test_demo_serve_with_metrics_port(tmp_path):
    """`cardswitch demo --serve --metrics-port PORT`: the demo network, scraped over HTTP."""
    port, metrics_port = free_ports(2), free_port()  # the demo listens on PORT and PORT+1
    command = [sys.executable, "-m", "switch.cli"]
    demo = subprocess.Popen([*command, "demo", "--serve", "--port", str(port), "--metrics-port", str(metrics_port),
                             "--log-file", str(tmp_path / "log")], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in demo.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("demo network up"):
                break
        assert any(f"127.0.0.1:{metrics_port}/metrics" in line for line in lines)
        bought = subprocess.run([*command, "terminal", "purchase", "--port", str(port), "--pan", APPROVE,
                                 "--expiry", EXPIRY, "--amount", "5", "--json"], capture_output=True, text=True,
                                timeout=30)
        assert bought.returncode == 0
        status, _, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        demo.terminate()
        demo.wait(timeout=15)
    assert status == 200
    assert 'cardswitch_transactions_total{issuer="bank_a",listener="terminals",mti="0200",rc="00"} 1.0' in text
    assert APPROVE not in text


def test_each_worker_serves_its_own_metrics_port(tmp_path):
    config = load_config(_config(tmp_path / "switch.toml", 1, metrics_port=9100))
    assert [worker_config(config, k).metrics_port for k in range(3)] == [9100, 9101, 9102]
    assert load_config(_config(tmp_path / "switch.toml", 1)).metrics_port is None
