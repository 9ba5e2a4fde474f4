"""Shared fixtures: the demo network over real loopback sockets, and a JSON log file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.network import start_network
from switch import logs


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    """Route cardswitch's JSON log lines to a file the test can read back."""
    path = tmp_path / "cardswitch.log"
    logs.configure(str(path))
    return path


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
async def demo(nursery, log_file, tmp_path):
    """The demo network (three issuers behind a switch) on ephemeral ports."""
    return await start_network(nursery, tmp_path / "data")


def toml_value(value) -> str:
    """Strings, numbers, booleans, arrays and inline tables, as TOML."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_config(path: Path, issuers: list[dict], routes: list[dict], listeners: list[dict] | None = None) -> Path:
    """A switch config file from plain dicts (tests build networks of their own with it)."""
    listeners = listeners or [{"name": "terminals", "port": 0}]
    lines = []
    for section, tables in (("listeners", listeners), ("issuers", issuers), ("routes", routes)):
        for table in tables:
            lines.append(f"[[{section}]]")
            lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
            lines.append("")
    path.write_text("\n".join(lines))
    return path
