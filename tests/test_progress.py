"""Progress bars on a terminal only: with stderr a pipe (CI), long commands print exactly what
they printed before; with stderr a terminal, a bar is drawn there and stdout is the same."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios
import subprocess
import sys
from pathlib import Path

import pytest

from switch import progress
from test_journal_cli import journal_db

ROOT = Path(__file__).resolve().parents[1]
DEMO_CSV = ROOT / "specs" / "demo" / "routes-demo.csv"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream, drawn", [(io.StringIO(), False), (Terminal(), True)])
def test_a_bar_draws_on_a_terminal_only(stream, drawn):
    with progress.bar(3, "work", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    assert bool(stream.getvalue()) is drawn


def commands(tmp_path: Path) -> list[list[str]]:
    return [["routes", "import", str(DEMO_CSV)], ["journal", "check", "--db", str(journal_db(tmp_path, 3))]]


def run(args: list[str], stderr) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", *args], stdout=subprocess.PIPE, stderr=stderr,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("index", [0, 1])
def test_nothing_extra_when_stderr_is_not_a_terminal_and_a_bar_when_it_is(tmp_path, index):
    args = commands(tmp_path)[index]
    piped = run(args, subprocess.PIPE)
    assert piped.stderr == ""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty is 0 wide
    try:
        on_terminal = run(args, terminal)
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert on_terminal.returncode == piped.returncode
    assert on_terminal.stdout == piped.stdout
    assert b"100%" in drawn or b"%|" in drawn  # the bar, on the terminal
