"""The admin port asks who you are: a token file made at first start (mode 0600), every command
line carrying it, refusals and commands logged, and `cardswitch admin` reading it."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
import trio

from conftest import log_text, read_events
from emulators.network import start_network
from switch.admintoken import ensure_token
from switch.errors import ConfigError


async def ask(port: int, line: bytes) -> tuple[dict, bytes]:
    """Send one line; the JSON reply, and whatever came after it before the switch closed."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(line + b"\n")
        received = b""
        with trio.fail_after(5):
            while b"\n" not in received:
                received += await stream.receive_some(4096)
            reply, _, rest = received.partition(b"\n")
            if json.loads(reply)["ok"] is False and b"token" in reply:
                while chunk := await stream.receive_some(4096):  # refused: the switch hangs up
                    rest += chunk
    return json.loads(reply), rest


@pytest.fixture
async def admin(nursery, log_file, tmp_path):
    network = await start_network(nursery, tmp_path / "data", admin_port=0)
    return network.ports["admin"], tmp_path / "data" / "admin.token"


async def test_the_token_file_is_made_at_first_start_readable_by_its_owner_only(admin):
    _, path = admin
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) == 64 and int(token, 16) >= 0
    assert ensure_token(path) == token  # the next start reads the same one


@pytest.mark.parametrize("line, reason", [(b"status", "no token"), (b"", "no token"),
                                          (b"00" * 32 + b" status", "wrong token"),
                                          ("é" * 32 + " status", "wrong token")])
async def test_a_command_without_the_right_token_is_refused_logged_and_hung_up_on(admin, log_file, line, reason):
    port, path = admin
    reply, rest = await ask(port, line.encode() if isinstance(line, str) else line)
    assert reply["ok"] is False and reply["detail"].startswith(reason) and "routes" not in reply
    assert rest == b""
    refused = [e for e in read_events(log_file) if e["event"] == "admin_refused"]
    assert [(e["reason"], e["peer"].startswith("127.0.0.1:")) for e in refused] == [(reason, True)]
    assert path.read_text().strip() not in log_text(log_file)


async def test_the_right_token_works_and_each_command_is_logged(admin, log_file):
    port, path = admin
    token = path.read_text().strip().encode()
    status, _ = await ask(port, token + b" status")
    assert status["ok"] is True and "links" in status
    unknown, _ = await ask(port, token + b" launch-rockets")
    assert unknown["ok"] is False and "unknown command" in unknown["detail"]
    commands = [(e["command"], e["ok"]) for e in read_events(log_file) if e["event"] == "admin_command"]
    assert commands == [("status", True), ("unknown", False)]
    assert token.decode() not in log_text(log_file)


async def test_cardswitch_admin_reads_the_token_from_the_data_dir(admin, tmp_path):
    port, path = admin
    command = [sys.executable, "-m", "switch.cli", "admin", "status", "--admin", f"127.0.0.1:{port}"]
    by_dir = await trio.run_process([*command, "--data-dir", str(path.parent)], capture_stdout=True, check=False)
    assert by_dir.returncode == 0 and json.loads(by_dir.stdout)["ok"] is True
    by_file = await trio.run_process([*command, "--token-file", str(path)], capture_stdout=True, check=False)
    assert by_file.returncode == 0
    wrong = tmp_path / "wrong.token"
    wrong.write_text("ab" * 32)
    refused = await trio.run_process([*command, "--token-file", str(wrong)], capture_stdout=True, check=False)
    assert refused.returncode == 1 and json.loads(refused.stdout)["detail"].startswith("wrong token")
    missing = await trio.run_process([*command, "--data-dir", str(tmp_path / "nowhere")], capture_stderr=True,
                                     check=False)
    assert missing.returncode == 2 and missing.stderr.decode().count("\n") == 1


def test_a_token_others_may_read_or_that_is_no_token_is_not_trusted(tmp_path: Path):
    path = tmp_path / "admin.token"
    path.write_text("ab" * 32)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="only its owner may read"):
        ensure_token(path)
    path.chmod(0o600)
    path.write_text("not a token")
    with pytest.raises(ConfigError, match="64 hex digits"):
        ensure_token(path)
