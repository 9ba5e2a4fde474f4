"""`cardswitch hsm calc` / `genkey` / `serve` as real processes: results, JSON, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from switch.hsm.client import HsmUnavailable, TcpHsm
from switch.hsm.keystore import Keystore
from switch.hsm.lmk import load_lmk

ROOT = Path(__file__).resolve().parent.parent
DEMO_LMK = ROOT / "specs" / "demo" / "lmk-insecure.txt"
KEY = "0123456789ABCDEFFEDCBA9876543210"


def cardswitch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "hsm", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, expected", [
    (["kcv", "--key", KEY], "08D7B4"),
    (["cvv", "--cvk", KEY, "--pan", "1234567890123456", "--expiry", "9912", "--service-code", "220"], "170"),
    (["pvv", "--pvk", KEY, "--pan", "1122334455667788", "--pvki", "3", "--pin", "4524"], "4021"),
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "1122334455667788",
      "--dectab", "1234567890123456"], "0000"),
    (["pinblock", "--format", "0", "--pin", "1234", "--pan", "5544332211009966"], "041277CDDEEFF669"),
    (["mac", "--key", KEY, "--data", "4E6F77206973207468652074696D6520666F7220616C6C20", "--algorithm", "x9.19"],
     "A1C72E74EA3FA9B6"),
    (["mac", "--key", "2B7E151628AED2A6ABF7158809CF4F3C", "--data", "6BC1BEE22E409F96E93D7E117393172A",
      "--algorithm", "cmac"], "070A16B46B4D4144F79BDD9DD04A287C"),  # RFC 4493 example 2
    (["kcv", "--key", "0123456789ABCDEF"], "D5D44F"),  # single DES: DES(K, zeros)
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "4761730000000001"], "3539"),
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "47617300000N",
      "--pan", "4761730000000011"], "3539"),  # docs/hsm.md: N = the account number's last 5 digits
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "112233445566"], "3477"),  # = 112233445566FFFF
])
def test_calc_prints_the_value(args, expected):
    result = cardswitch("calc", *args)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, expected, "")


def test_calc_json_and_encrypted_pin_block():
    result = cardswitch("calc", "pinblock", "--format", "3", "--pin", "1234", "--pan", "5544332211009966",
                        "--key", KEY, "--json")
    out = json.loads(result.stdout)
    assert out["encrypted"] is True and out["kcv"] == "08D7B4" and len(out["pin_block"]) == 16
    assert json.loads(cardswitch("calc", "kcv", "--key", KEY, "--json").stdout) == {
        "algorithm": "tdes", "kcv": "08D7B4", "parity_ok": True}


@pytest.mark.parametrize("args, names", [
    (["kcv", "--key", "XYZ"], "--key"),
    (["cvv", "--cvk", KEY, "--pan", "1234567890123456", "--expiry", "991", "--service-code", "220"], "--expiry"),
    (["pvv", "--pvk", KEY, "--pan", "1122334455667788", "--pvki", "3", "--pin", "45x4"], "--pin"),
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "11223344"], "--validation-data"),
    (["pinblock", "--format", "2", "--pin", "1234", "--pan", "5544332211009966"], "--format"),
    (["pinblock", "--format", "4", "--pin", "1234", "--pan", "5544332211009966", "--key", KEY[:20]], "--key"),
    (["mac", "--key", KEY, "--data", "12", "--algorithm", "x9.19", "--padding", "3"], "--padding"),
    (["mac", "--key", KEY, "--data", "", "--algorithm", "x9.19"], "--data"),
    (["mac", "--key", "2B7E151628AED2A6ABF7158809CF4F3C", "--data", "", "--algorithm", "cmac"], "--data"),
    (["kcv", "--key", "0123456789ABCD"], "--key"),
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "47617300000N"], "--pan"),
    (["ibm-offset", "--pvk", KEY, "--pin", "4524", "--validation-data", "47617300000X"], "--validation-data"),
])
def test_calc_bad_input_is_one_line_exit_2(args, names):
    result = cardswitch("calc", *args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in result.stderr
    assert "45x4" not in result.stderr and KEY[:20] not in result.stderr


def test_genkey_output_loads_as_a_key_store(tmp_path):
    lmk = load_lmk(DEMO_LMK)
    result = cardswitch("genkey", "--type", "ZPK", "--name", "zpk.bank_d", "--lmk-file", str(DEMO_LMK))
    assert result.returncode == 0
    path = tmp_path / "keys.toml"
    path.write_text(f'lmk_check_value = "{lmk.check_value()}"\n{result.stdout}')
    assert Keystore.load(path, lmk).names() == ["zpk.bank_d"]


def test_serve_without_lmk_is_a_usage_error():
    env = {k: v for k, v in os.environ.items() if k != "CARDSWITCH_LMK"}
    result = subprocess.run([sys.executable, "-m", "switch.cli", "hsm", "serve", "--port", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "CARDSWITCH_LMK" in result.stderr


async def test_serve_answers_host_commands():
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "switch.cli", "hsm", "serve", "--port", str(port), "--lmk-file", str(DEMO_LMK),
         "--keys", str(ROOT / "specs" / "demo" / "keys.toml")], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        hsm = TcpHsm("127.0.0.1", port, timeout=1)
        with trio.fail_after(20):
            while True:
                try:
                    assert await hsm.diagnostics() == load_lmk(DEMO_LMK).check_value()
                    break
                except HsmUnavailable:
                    await trio.sleep(0.1)
        await hsm.aclose()
    finally:
        process.kill()
        await process.wait()


def test_serve_on_a_port_in_use_is_one_line_naming_the_address():
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cardswitch("serve", "--port", str(port), "--lmk-file", str(DEMO_LMK))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr


def test_serve_refuses_a_port_beyond_65535():
    result = cardswitch("serve", "--port", "70000", "--lmk-file", str(DEMO_LMK))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--port" in result.stderr
