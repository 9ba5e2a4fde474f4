"""TLS on every link, over real loopback sockets with certificates made for each test: terminal
listeners (server certificates, client certificates required), issuer links, the HSM link; what
each failure looks like (the connection closed, one log line, the server serving the others);
certificates renewed while connections stay open; and config mistakes, refused at start."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import pytest
import trio

from conftest import Pki, journal_rows, log_text, make_bank, read_events, serve_switch, start_issuer, write_config
from emulators.issuer import IssuerHostConfig, load_issuer_file, serve_issuer
from emulators.network import DEMO_DIR, DEMO_KEYS, DEMO_LMK, terminal_pin_key
from emulators.terminal import TerminalError, open_terminal
from switch import admin
from switch.config import load_config
from switch.errors import ConfigError
from switch.hsm.client import HsmUnavailable, TcpHsm
from switch.hsm.lmk import load_lmk
from switch.hsm.server import serve_hsm
from switch.service import Switch
from switch.tls import TlsConfig, TlsEndpoint
from switch.wire.dialect import load_dialect
from tools.load.processes import toml_text

APPROVE = "4761730000000011"
EXPIRY = "3012"


def client(pki: Pki, name: str | None = None) -> TlsEndpoint:
    """A terminal's TLS: trusts `pki`'s CA; presents a certificate for `name` when given."""
    cert, key = pki.issue(name) if name else (None, None)
    return TlsEndpoint(TlsConfig(ca=pki.ca, cert=cert, key=key), server_side=False)


async def start_switch(nursery, tmp_path: Path, pki: Pki, *, tls: dict | None = None, issuer: dict | None = None,
                       **listener) -> tuple[Switch, int]:
    """A TLS listener (`tls` keys on top of the switch's certificate) before one plain issuer
    approving APPROVE (unless `issuer` says where another one is); returns the switch and its port."""
    cert, key = pki.issue("switch")
    if issuer is None:
        issuer = {"name": "bank", "port": await start_issuer(nursery, make_bank({"pan": APPROVE}))}
    config = write_config(tmp_path / "switch.toml", issuers=[issuer], routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0, **listener,
                                      "tls": {"cert": str(cert), "key": str(key), **(tls or {})}}])
    switch = Switch(load_config(config, data_dir=tmp_path / "data"))
    ports = await nursery.start(switch.run)
    with trio.fail_after(10):
        await switch.wait_links_up()
    return switch, ports["terminals"]


async def purchase(port: int, tls: TlsEndpoint | None, tid: str = "T0000001") -> str:
    async with open_terminal("127.0.0.1", port, tls=tls, tid=tid, timeout=10) as terminal:
        return (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"]


async def refused(port: int, tls: TlsEndpoint | None) -> bool:
    """The switch closes the connection instead of answering (during or right after the handshake)."""
    try:
        async with open_terminal("127.0.0.1", port, tls=tls, timeout=10) as terminal:
            try:
                await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY)
            except TerminalError:
                return True
    except TerminalError:  # the handshake already failed
        return True
    return False


def handshake_failures(log_file: Path) -> list[dict]:
    return [e for e in read_events(log_file) if e["event"] == "tls_handshake_failed"]


def no_private_key_in(log_file: Path, pki: Pki) -> bool:
    text = log_text(log_file)
    secrets = [line for key in pki.directory.glob("*-key.pem") for line in key.read_text().splitlines()[1:-1]]
    return "PRIVATE KEY" not in text and not any(line in text for line in secrets)


async def test_a_purchase_over_tls_is_approved_and_journaled(nursery, tmp_path, pki, log_file):
    switch, port = await start_switch(nursery, tmp_path, pki)
    assert await purchase(port, client(pki)) == "00"
    await switch.journal.flush()
    [row] = journal_rows(tmp_path / "data")
    assert (row["rc"], row["issuer"]) == ("00", "bank")
    assert [e["tls"] for e in read_events(log_file) if e["event"] == "listener_up"] == [True]
    assert no_private_key_in(log_file, pki)


async def test_a_required_client_certificate_missing_or_from_another_ca_closes_the_connection(
        nursery, tmp_path, pki, log_file):
    switch, port = await start_switch(nursery, tmp_path, pki, tls={"ca": str(pki.ca), "client_certs": "required"})
    assert await refused(port, client(pki))  # no certificate
    stranger, stranger_key = Pki(tmp_path / "other", "another CA").issue("T0000001")
    assert await refused(port, TlsEndpoint(TlsConfig(ca=pki.ca, cert=stranger, key=stranger_key), server_side=False))
    assert await purchase(port, client(pki, "T0000001")) == "00"  # the listener serves the others
    failures = handshake_failures(log_file)
    assert [f["reason"] for f in failures] == [
        "no client certificate", "certificate verify failed: unable to get local issuer certificate"]
    assert all(f["listener"] == "terminals" and f["peer"].startswith("127.0.0.1:") for f in failures)
    assert not any(e["event"] in ("terminal_disconnected", "internal_error") for e in read_events(log_file)
                   if e.get("peer") in {f["peer"] for f in failures})


async def test_tls_1_1_is_refused_with_one_line(nursery, tmp_path, pki, log_file):
    switch, port = await start_switch(nursery, tmp_path, pki)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the very point: an old, deprecated version
        old.minimum_version, old.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # so this client does offer TLS 1.1
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), old)
    with pytest.raises(trio.BrokenResourceError):
        await stream.do_handshake()
    assert await purchase(port, client(pki)) == "00"
    [failure] = handshake_failures(log_file)
    assert failure["reason"] == "protocol version below the minimum (TLS 1.2)"


async def test_a_plain_tcp_client_on_a_tls_listener_is_closed_with_one_line(nursery, tmp_path, pki, log_file):
    switch, port = await start_switch(nursery, tmp_path, pki)
    assert await refused(port, None)
    assert await purchase(port, client(pki)) == "00"
    [failure] = handshake_failures(log_file)
    assert failure["reason"] == "not a TLS handshake (a plain-TCP client?)"
    assert "Traceback" not in log_text(log_file)


async def test_a_silent_client_is_closed_after_the_frame_timeout(nursery, tmp_path, pki, log_file):
    switch, port = await start_switch(nursery, tmp_path, pki, frame_timeout_ms=300)
    async with await trio.open_tcp_stream("127.0.0.1", port) as silent:
        with trio.fail_after(10):
            assert await silent.receive_some(100) == b""
    [failure] = handshake_failures(log_file)
    assert failure["reason"] == "no TLS handshake within 300 ms"
    assert await purchase(port, client(pki)) == "00"


async def tls_issuer(nursery, pki: Pki, **tls) -> int:
    """An issuer emulator serving TLS only (`tls` on top of its certificate for 127.0.0.1)."""
    cert, key = pki.issue("bank")
    config = IssuerHostConfig(name="bank", host="127.0.0.1", port=0, dialect=load_dialect(),
                              tls=TlsConfig(cert=cert, key=key, **tls))
    return await nursery.start(serve_issuer, config, make_bank({"pan": APPROVE}))


async def test_an_issuer_link_over_mutual_tls(nursery, tmp_path, pki, log_file):
    port = await tls_issuer(nursery, pki, ca=pki.ca, client_certs="required")
    cert, key = pki.issue("switch-client")
    issuer = {"name": "bank", "port": port, "tls": {"ca": str(pki.ca), "cert": str(cert), "key": str(key)}}
    switch, terminals = await start_switch(nursery, tmp_path, pki, issuer=issuer)
    assert await purchase(terminals, client(pki)) == "00"
    assert handshake_failures(log_file) == []


async def test_an_issuer_link_with_the_wrong_server_name_stays_down(nursery, tmp_path, pki, log_file):
    port = await tls_issuer(nursery, pki)
    issuer = {"name": "bank", "port": port, "reconnect_min_ms": 200,
              "tls": {"ca": str(pki.ca), "server_name": "bank.example"}}
    cert, key = pki.issue("switch")
    config = write_config(tmp_path / "switch.toml", issuers=[issuer], routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0}])
    switch = Switch(load_config(config, data_dir=tmp_path / "data"))
    ports = await nursery.start(switch.run)
    with trio.fail_after(10):
        while not handshake_failures(log_file):
            await trio.sleep(0.05)
    assert await purchase(ports["terminals"], None) == "91"
    failure = handshake_failures(log_file)[0]
    assert failure["issuer"] == "bank" and failure["peer"] == f"127.0.0.1:{port}"
    assert failure["reason"] == "certificate verify failed: Hostname mismatch, certificate is not valid for 'bank.example'."
    assert not switch.links["bank"].up


async def test_the_hsm_link_over_tls_with_a_client_certificate(nursery, pki, log_file):
    cert, key = pki.issue("hsm")
    server = TlsConfig(cert=cert, key=key, ca=pki.ca, client_certs="required")
    port = await nursery.start(lambda task_status: serve_hsm(0, "127.0.0.1", load_lmk(DEMO_LMK), tls=server,
                                                             task_status=task_status))
    cert, key = pki.issue("switch")
    hsm = TcpHsm("127.0.0.1", port, timeout=5, tls=TlsConfig(ca=pki.ca, cert=cert, key=key))
    assert await hsm.diagnostics() == load_lmk(DEMO_LMK).check_value()[:16]
    without = TcpHsm("127.0.0.1", port, timeout=5, tls=TlsConfig(ca=pki.ca))
    with pytest.raises(HsmUnavailable):
        await without.diagnostics()
    plain = TcpHsm("127.0.0.1", port, timeout=5)
    with pytest.raises(HsmUnavailable):
        await plain.diagnostics()
    assert [f["reason"] for f in handshake_failures(log_file)] == [
        "no client certificate", "not a TLS handshake (a plain-TCP client?)"]
    await hsm.aclose()
    assert no_private_key_in(log_file, pki)


async def test_the_switch_translates_pins_through_its_hsm_over_tls(nursery, tmp_path, pki, log_file):
    cert, key = pki.issue("hsm")
    server = TlsConfig(cert=cert, key=key, ca=pki.ca, client_certs="required")
    hsm_port = await nursery.start(lambda task_status: serve_hsm(0, "127.0.0.1", load_lmk(DEMO_LMK), tls=server,
                                                                 task_status=task_status))
    host_config, bank = load_issuer_file(DEMO_DIR / "issuers" / "bank_a.toml")  # verifies PIN blocks under its ZPK
    issuer_port = await nursery.start(serve_issuer, IssuerHostConfig(
        name="bank_a", host="127.0.0.1", port=0, dialect=host_config.dialect, pin_check=host_config.pin_check), bank)
    cert, key = pki.issue("switch")
    config = tmp_path / "switch.toml"
    config.write_text(toml_text({
        "hsm": {"mode": "tcp", "port": hsm_port, "timeout_ms": 2000, "keys": str(DEMO_KEYS),
                "tls": {"ca": str(pki.ca), "cert": str(cert), "key": str(key)}},
        "listeners": [{"name": "terminals", "port": 0, "tpk": "tpk.demo"}],
        "issuers": [{"name": "bank_a", "port": issuer_port, "zpk": "zpk.bank_a"}],
        "routes": [{"prefix": "476173", "issuer": "bank_a"}]}))
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    async with open_terminal("127.0.0.1", ports["terminals"], pin_key=terminal_pin_key()) as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY, pin="1234"))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY, pin="0000"))["39"] == "55"
    assert handshake_failures(log_file) == []


def server_name(stream: trio.SSLStream) -> str:
    return dict(item[0] for item in stream.getpeercert()["subject"])["commonName"]


async def test_a_renewed_certificate_is_used_by_new_connections_only(nursery, tmp_path, pki, log_file):
    switch, port = await start_switch(nursery, tmp_path, pki)
    tls = client(pki)
    async with open_terminal("127.0.0.1", port, tls=tls) as before:
        assert (await before.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
        renewed, renewed_key = pki.issue("switch renewed")
        (pki.directory / "switch.pem").write_bytes(renewed.read_bytes())
        (pki.directory / "switch-key.pem").write_bytes(renewed_key.read_bytes())
        assert switch.reload_tls() == (True, "reloaded: listener terminals")
        assert (await before.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"  # not dropped
        fresh = await tls.secure(await trio.open_tcp_stream("127.0.0.1", port), 5, "127.0.0.1")
        assert server_name(fresh) == "switch renewed"
        await fresh.aclose()
        # A key that is not the certificate's own is refused; the renewed certificate stays.
        pki.issue("stray")
        (pki.directory / "switch-key.pem").write_bytes((pki.directory / "stray-key.pem").read_bytes())
        assert await admin.answer(switch, "reload-tls") == {  # the operator's command does the same
            "ok": False, "detail": "listener terminals: key: the private key of the certificate in switch.pem"}
        fresh = await tls.secure(await trio.open_tcp_stream("127.0.0.1", port), 5, "127.0.0.1")
        assert server_name(fresh) == "switch renewed"
        await fresh.aclose()
        assert (await before.purchase(pan=APPROVE, amount=100, expiry=EXPIRY))["39"] == "00"
    events = [e["event"] for e in read_events(log_file) if e["event"].startswith("tls_reload")]
    assert events == ["tls_reloaded", "tls_reload_rejected"]
    assert no_private_key_in(log_file, pki)


def _listener_tls(pki: Pki, tmp_path: Path, **tls: str) -> Path:
    cert, key = pki.issue("switch")
    return write_config(tmp_path / "switch.toml", issuers=[], routes=[],
                        listeners=[{"name": "terminals", "port": 0, "tls": {"cert": str(cert), "key": str(key), **tls}}])


@pytest.mark.parametrize("change, key, expected", [
    ({"key": "stray"}, "listeners[0].tls.key", "the private key of the certificate in switch.pem"),
    ({"cert": "garbage"}, "listeners[0].tls.cert", "a PEM certificate (or chain)"),
    ({"cert": "missing"}, "listeners[0].tls.cert", "the path of an existing PEM certificate file, relative to this file"),
    ({"client_certs": "required"}, "listeners[0].tls.ca", "the CA that client certificates are checked against"),
    ({"client_certs": "always"}, "listeners[0].tls.client_certs", "one of: none, optional, required"),
    ({"min_version": "1.1"}, "listeners[0].tls.min_version", 'one of: "1.2", "1.3"'),
    ({"server_name": "x"}, "listeners[0].tls.server_name", "not a known key (known here: ca, cert, client_certs, "
                                                           "key, min_version)"),
])
def test_tls_config_mistakes_name_the_file_and_key(tmp_path, pki, change, key, expected):
    pki.issue("stray")
    (pki.directory / "garbage.pem").write_text("not a certificate\n")
    files = {"stray": str(pki.directory / "stray-key.pem"), "garbage": str(pki.directory / "garbage.pem"),
             "missing": str(pki.directory / "missing.pem")}
    config = _listener_tls(pki, tmp_path, **{k: files.get(v, v) for k, v in change.items()})
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert (error.value.key, error.value.expected) == (key, expected)


def test_an_encrypted_private_key_is_refused_not_prompted_for(tmp_path, pki):
    from cryptography.hazmat.primitives import serialization

    cert, key = pki.issue("switch")
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(b"secret")))
    config = write_config(tmp_path / "switch.toml", issuers=[], routes=[],
                          listeners=[{"name": "terminals", "port": 0, "tls": {"cert": str(cert), "key": str(key)}}])
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.tls\.key: an unencrypted PEM private key"):
        load_config(config)
