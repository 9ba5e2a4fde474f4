"""The HSM over real loopback TCP: the server, TcpHsm vs InProcessHsm, failures and timeouts."""

from __future__ import annotations

import functools
import socket

import pytest
import trio

from conftest import log_text
from switch.hsm import mac, pinblock, pinverify
from switch.hsm.client import HsmError, HsmUnavailable, InProcessHsm, TcpHsm
from switch.hsm.framing import FrameDecoder, frame
from switch.hsm.keys import Key
from switch.hsm.lmk import KeyType, Lmk
from switch.hsm.server import serve_hsm

LMK = Lmk.from_hex("0123456789ABCDEFFEDCBA9876543210")
K = Key.tdes(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
K2 = Key.tdes(bytes.fromhex("89ABCDEF0123456776543210FEDCBA98"))
PAN = "4761739001010010"


async def start(nursery, **kwargs) -> int:
    return await nursery.start(lambda task_status: serve_hsm(0, "127.0.0.1", LMK, task_status=task_status, **kwargs))


async def exchange(stream: trio.SocketStream, payload: bytes) -> bytes:
    await stream.send_all(frame(payload))
    decoder = FrameDecoder()
    while True:
        data = await stream.receive_some(4096)
        assert data, "server closed the connection"
        frames = decoder.feed(data)
        if frames:
            return frames[0]


async def both_clients(nursery):
    port = await start(nursery)
    return [InProcessHsm(LMK), TcpHsm("127.0.0.1", port, timeout=5)]


async def test_clients_behave_identically(nursery):
    tpk, zpk, pvk, cvk, zak = (LMK.encrypt_key(t, k) for t, k in (
        (KeyType.TPK, K), (KeyType.ZPK, K2), (KeyType.PVK, K2), (KeyType.CVK, K), (KeyType.ZAK, K2)))
    pvv = pinverify.visa_pvv(K2, PAN, 1, "1234")
    offset = pinverify.ibm_offset(K2, "1234", PAN[:11] + PAN[-6:-1], "0123456789012345")
    good, bad = (pinblock.encrypt_pin(K, 0, pin, PAN).hex() for pin in ("1234", "9999"))
    results = []
    for hsm in await both_clients(nursery):
        assert await hsm.diagnostics() == LMK.check_value()
        translated = await hsm.translate_pin_tpk_to_zpk(tpk, zpk, good, PAN, 0, 3)
        assert pinblock.decrypt_pin(K2, 3, bytes.fromhex(translated), PAN) == "1234"
        again = await hsm.translate_pin_zpk_to_zpk(zpk, LMK.encrypt_key(KeyType.ZPK, K), translated, PAN, 3, 0)
        assert pinblock.decrypt_pin(K, 0, bytes.fromhex(again), PAN) == "1234"
        cvv = await hsm.generate_cvv(cvk, PAN, "2812", "000")
        mac_hex = await hsm.generate_mac(zak, b"message")
        assert mac_hex == mac.retail_mac(K2, b"message").hex().upper()
        results.append((
            cvv,
            await hsm.verify_cvv(cvk, PAN, "2812", "000", cvv),
            await hsm.verify_cvv(cvk, PAN, "2812", "101", cvv),
            await hsm.verify_pin_pvv("tpk", tpk, pvk, good, PAN, 0, 1, pvv),
            await hsm.verify_pin_pvv("tpk", tpk, pvk, bad, PAN, 0, 1, pvv),
            await hsm.verify_pin_ibm("tpk", tpk, pvk, good, PAN, 0, offset, PAN[:11] + "N"),
            await hsm.verify_pin_ibm("tpk", tpk, pvk, bad, PAN, 0, offset, PAN[:11] + "N"),
            await hsm.verify_mac(zak, b"message", mac_hex),
            await hsm.verify_mac(zak, b"massage", mac_hex),
            await hsm.key_check_value("001", zpk),
            (await hsm.import_zpk(LMK.encrypt_key(KeyType.ZMK, K), (await hsm.generate_key("001", zmk=LMK.encrypt_key(KeyType.ZMK, K))).under_zmk)).kcv != "",
        ))
        with pytest.raises(HsmError) as info:
            await hsm.verify_cvv(zpk, PAN, "2812", "000", cvv)
        assert info.value.code == "10"
        await hsm.aclose()
    assert results[0] == results[1]
    assert results[0][1:] == (True, False, True, False, True, False, True, False, K2.kcv(), True)


async def test_clients_fail_alike(nursery):
    """The in-process client skips the frame, not the checks: the same error codes as over TCP,
    and a key the HSM has decrypted (and keeps) still fails under another LMK or key type."""
    zak, cvk = LMK.encrypt_key(KeyType.ZAK, K2), LMK.encrypt_key(KeyType.CVK, K)
    other = Lmk.from_hex("FEDCBA98765432100123456789ABCDEF")
    port = await start(nursery)
    other_port = await nursery.start(lambda task_status: serve_hsm(0, "127.0.0.1", other, task_status=task_status))
    for hsm, elsewhere in ((InProcessHsm(LMK), InProcessHsm(other)),
                           (TcpHsm("127.0.0.1", port, timeout=5), TcpHsm("127.0.0.1", other_port, timeout=5))):
        assert await hsm.generate_mac(zak, b"message") == mac.retail_mac(K2, b"message").hex().upper()
        codes = []
        for call in (lambda: elsewhere.generate_mac(zak, b"message"),  # the key under another LMK
                     lambda: hsm.generate_mac(zak, b"message", key_type_code="003"),  # as a TAK
                     lambda: hsm.verify_cvv(cvk, PAN + "\u00e9", "2812", "000", "123"),  # not ASCII
                     lambda: hsm.generate_mac(zak, b"message", size=5)):
            with pytest.raises(HsmError) as info:
                await call()
            codes.append(info.value.code)
        assert codes == ["10", "10", "15", "15"]
        await hsm.aclose()
        await elsewhere.aclose()


async def test_unknown_and_malformed_commands_over_tcp(nursery):
    port = await start(nursery)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    assert await exchange(stream, b"0042QQ") == b"0042QR68"
    assert await exchange(stream, b"0043CA123") == b"0043CB15"
    assert await exchange(stream, b"0044\x00\xff") == b"0044ZZ15"
    assert await exchange(stream, b"") == b"ZZ15"
    assert (await exchange(stream, b"0045NC"))[:8] == b"0045ND00"
    await stream.aclose()


async def test_truncated_frame_does_not_hurt_other_connections(nursery):
    port = await start(nursery, idle_timeout=0.3)
    stalled = await trio.open_tcp_stream("127.0.0.1", port)
    await stalled.send_all(b"\x00\x20" + b"0001CA")
    with trio.fail_after(5):
        other = await trio.open_tcp_stream("127.0.0.1", port)
        assert (await exchange(other, b"0002NC"))[:8] == b"0002ND00"
        assert await stalled.receive_some(100) == b""  # closed after idle_timeout mid-frame
    await other.aclose()
    await stalled.aclose()


async def test_closed_port_is_unavailable_within_timeout():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hsm = TcpHsm("127.0.0.1", port, timeout=1.0)
    with trio.fail_after(3):
        with pytest.raises(HsmUnavailable):
            await hsm.diagnostics()


async def test_silent_hsm_times_out(nursery):
    async def swallow(stream):
        await trio.sleep_forever()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, swallow, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    hsm = TcpHsm("127.0.0.1", port, timeout=0.3)
    with trio.fail_after(3):
        with pytest.raises(HsmUnavailable, match="within"):
            await hsm.diagnostics()


async def test_reconnects_after_hsm_restart(nursery):
    async with trio.open_nursery() as first:
        port = await start(first)
        hsm = TcpHsm("127.0.0.1", port, timeout=2)
        assert await hsm.diagnostics() == LMK.check_value()
        first.cancel_scope.cancel()
    with pytest.raises(HsmUnavailable):
        await hsm.diagnostics()
    await nursery.start(lambda task_status: serve_hsm(port, "127.0.0.1", LMK, task_status=task_status))
    assert await hsm.diagnostics() == LMK.check_value()
    await hsm.aclose()


async def test_concurrent_calls_share_one_connection(nursery):
    port = await start(nursery)
    hsm = TcpHsm("127.0.0.1", port, timeout=5)
    cvk = LMK.encrypt_key(KeyType.CVK, K)
    results = {}

    async def one(i):
        results[i] = await hsm.generate_cvv(cvk, PAN, f"28{i % 12 + 1:02d}", "101")

    async with trio.open_nursery() as calls:
        for i in range(20):
            calls.start_soon(one, i)
    reference = InProcessHsm(LMK)
    for i, value in results.items():
        assert value == await reference.generate_cvv(cvk, PAN, f"28{i % 12 + 1:02d}", "101")
    await hsm.aclose()


async def test_no_pin_pan_or_key_in_logs_or_errors(nursery, log_file):
    port = await start(nursery)
    hsm = TcpHsm("127.0.0.1", port, timeout=5)
    tpk, zpk = LMK.encrypt_key(KeyType.TPK, K), LMK.encrypt_key(KeyType.ZPK, K2)
    block = pinblock.encrypt_pin(K, 0, "8642", PAN).hex()
    errors = []
    for call in (
        hsm.translate_pin_tpk_to_zpk(tpk, zpk, block, PAN[:-2] + "71", 0, 0),  # wrong PAN: bad block
        hsm.translate_pin_tpk_to_zpk(tpk, zpk, block, PAN, 0, 1),             # forbidden format change
        hsm.translate_pin_tpk_to_zpk(zpk, tpk, block, PAN, 0, 0),             # key types swapped
        hsm.verify_cvv(LMK.encrypt_key(KeyType.CVK, K), PAN + "9999", "2812", "101", "123"),
        hsm.verify_cvv(LMK.encrypt_key(KeyType.CVK, K), PAN + "\u00e9", "2812", "101", "123"),
    ):
        with pytest.raises(HsmError) as info:
            await call
        errors.append(str(info.value))
    logged = log_text(log_file)
    assert '"event":"hsm_command_error"' in logged and '"code":"20"' in logged
    shown = (" ".join(errors) + logged).upper()
    for secret in ("8642", PAN, PAN[-13:-1], K.material.hex().upper(), K2.material.hex().upper(),
                   LMK.key.material.hex().upper(), block.upper()):
        assert secret not in shown
    await hsm.aclose()
