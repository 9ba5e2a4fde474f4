"""TLS with cardswitch as real processes: `demo --serve --tls` and its CA file, `serve` reloading
renewed certificates on SIGHUP without dropping a connection, `terminal`, `load` and `replay`
speaking TLS, and the one-line errors for TLS mistakes (exit 2)."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Pki
from emulators.network import DEMO_LMK
from processes import APPROVE, EXPIRY, card, one_issuer_network
from switch.hsm.client import HsmUnavailable, TcpHsm
from switch.hsm.lmk import load_lmk
from switch.tls import TlsConfig
from tools.load.processes import free_port, free_ports, wait_for_events, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "switch.cli"]


def cardswitch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def events(log: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if f'"event":"{name}"' in line]


def server_common_name(port: int, ca: Path) -> str:
    """The common name of the certificate a new connection to `port` is shown."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as secured:
            return dict(item[0] for item in secured.getpeercert()["subject"])["commonName"]


def test_demo_serve_tls_serves_known_terminals_over_tls_only(tmp_path):
    port, data_dir = free_ports(2), tmp_path / "data"  # the demo listens on PORT and PORT+1
    demo = subprocess.Popen([*COMMAND, "demo", "--serve", "--tls", "--port", str(port), "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        wait_for_port(port, demo, "the demo")
        ca = data_dir / "tls" / "ca.pem"
        target = ["--target", f"127.0.0.1:{port}"]
        purchase = cardswitch("terminal", "purchase", *target, "--tls", "--ca", str(ca), "--pan", APPROVE,
                              "--expiry", EXPIRY, "--amount", "5", "--json")
        assert purchase.returncode == 0, purchase.stdout + purchase.stderr
        assert json.loads(purchase.stdout)["39"] == "00"
        by_name = cardswitch("terminal", "echo", "--target", f"localhost:{port}", "--tls", "--ca", str(ca))
        assert by_name.returncode == 0, by_name.stderr
        stranger = cardswitch("terminal", "echo", *target, "--tls", "--ca", str(ca), "--tid", "T0000999", "--json")
        assert stranger.returncode == 1 and json.loads(stranger.stdout)["39"] == "58"
        plain = cardswitch("terminal", "echo", *target, "--timeout", "10")
        assert plain.returncode == 3 and plain.stderr.count("\n") == 1, plain.stderr
        untrusted = cardswitch("terminal", "echo", *target, "--tls")  # the system's CAs do not know the demo's
        assert untrusted.returncode == 3 and "certificate verify failed" in untrusted.stderr
        log = data_dir / "switch.log"
        assert "not a TLS handshake (a plain-TCP client?)" in [e["reason"] for e in events(log, "tls_handshake_failed")]
        assert "PRIVATE KEY" not in log.read_text()
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=30)
        assert demo.returncode == 0
        assert f"tls: CA certificate {ca}" in out and "TLS only" in out
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()


def test_the_scripted_demo_stays_plain_and_tls_needs_serve():
    refused = cardswitch("demo", "--tls")
    assert refused.returncode == 2 and refused.stderr.strip() == "cardswitch: error: --tls: only with --serve"


def tls_network(tmp_path: Path, pki: Pki):
    """A one-issuer network whose terminal listener serves TLS with a certificate named "switch"."""
    network = one_issuer_network(tmp_path, [card()])
    cert, key = pki.issue("switch")
    config = network.config.read_text().replace(
        "[[issuers]]", f'[listeners.tls]\ncert = "{cert}"\nkey = "{key}"\n\n[[issuers]]', 1)
    network.config.write_text(config)
    return network


def test_sighup_reloads_a_renewed_certificate_without_dropping_connections(tmp_path, pki, processes):
    network = tls_network(tmp_path, pki)
    _, switch = processes.issuer_and_switch(network)
    assert f"terminals 127.0.0.1:{network.switch_port} (TLS)" in (tmp_path / "switch.out").read_text()
    target = f"127.0.0.1:{network.switch_port}"
    capture = tmp_path / "session.jsonl"
    first = cardswitch("terminal", "purchase", "--target", target, "--tls", "--ca", str(pki.ca), "--pan", APPROVE,
                       "--expiry", EXPIRY, "--amount", "1", "--capture", str(capture))
    assert first.returncode == 0, first.stderr
    # A terminal that stays connected across the renewal, sending before and after it.
    held = subprocess.Popen([*COMMAND, "load", "--target", target, "--tls", "--ca", str(pki.ca), "--connections", "1",
                             "--tps", "20", "--duration", "4", "--mix", "purchase=1", "--issuer-file",
                             str(network.issuer_file), "--quiet", "--output", str(tmp_path / "load.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(1)
    assert server_common_name(network.switch_port, pki.ca) == "switch"
    renewed, renewed_key = pki.issue("switch renewed")
    (pki.directory / "switch.pem").write_bytes(renewed.read_bytes())
    (pki.directory / "switch-key.pem").write_bytes(renewed_key.read_bytes())
    switch.send_signal(signal.SIGHUP)
    wait_for_events(network.log, "tls_reloaded", 1, switch)
    assert server_common_name(network.switch_port, pki.ca) == "switch renewed"
    out, err = held.communicate(timeout=60)
    assert held.returncode == 0, out + err
    figures = json.loads((tmp_path / "load.json").read_text())
    assert figures["response_codes"] == {"00": figures["answered"]} and figures["lost"] == 0  # never dropped
    replayed = cardswitch("replay", str(capture), "--target", target, "--tls", "--ca", str(pki.ca))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    # The one failed handshake is the readiness probe's (a plain connect, closed at once).
    assert [e["reason"] for e in events(network.log, "tls_handshake_failed")] == [
        "connection closed during the handshake"]


def test_tls_mistakes_are_one_line_and_exit_2(tmp_path, pki):
    network = tls_network(tmp_path, pki)
    pki.issue("stray")
    (pki.directory / "switch-key.pem").write_bytes((pki.directory / "stray-key.pem").read_bytes())
    started = cardswitch("serve", "--config", str(network.config))
    assert started.returncode == 2
    assert started.stderr == (f"cardswitch: error: {network.config}: listeners[0].tls.key: "
                              "the private key of the certificate in switch.pem\n")
    for args, error in [
        (("terminal", "echo", "--ca", str(pki.ca)), "--ca: only with --tls"),
        (("terminal", "echo", "--tls", "--ca", str(tmp_path / "none.pem")), "--ca: a readable file of PEM CA certificates"),
        (("terminal", "echo", "--tls", "--cert", str(pki.directory / "stray.pem")), "--key: cert and key together, or neither"),
        (("load", "--target", "127.0.0.1:1", "--key", str(pki.ca)), "--key: only with --tls"),
        (("hsm", "serve", "--listen", "127.0.0.1:0", "--ca", str(pki.ca)), "--ca: only with --cert (TLS)"),
    ]:
        done = cardswitch(*args)
        assert (done.returncode, done.stderr) == (2, f"cardswitch: error: {error}\n"), args


async def test_hsm_serve_over_tls_as_a_process(tmp_path, pki, processes):
    cert, key = pki.issue("hsm")
    port, log = free_port(), tmp_path / "hsm.log"
    hsm = processes.start("hsm", "hsm", "serve", "--listen", f"127.0.0.1:{port}", "--lmk-file", str(DEMO_LMK),
                          "--cert", str(cert), "--key", str(key), "--ca", str(pki.ca), "--log-file", str(log))
    wait_for_events(log, "hsm_listening", 1, hsm)
    assert events(log, "hsm_listening")[0]["tls"] is True
    cert, key = pki.issue("switch")
    client = TcpHsm("127.0.0.1", port, timeout=10, tls=TlsConfig(ca=pki.ca, cert=cert, key=key))
    assert await client.diagnostics() == load_lmk(DEMO_LMK).check_value()[:16]
    await client.aclose()
    with pytest.raises(HsmUnavailable):  # --ca given: client certificates are required
        await TcpHsm("127.0.0.1", port, timeout=10, tls=TlsConfig(ca=pki.ca)).diagnostics()
    wait_for_events(log, "tls_handshake_failed", 1, hsm)
    assert [e["reason"] for e in events(log, "tls_handshake_failed")] == ["no client certificate"]
