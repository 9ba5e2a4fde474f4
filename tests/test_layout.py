"""The architecture as tests: the core stays free of I/O, the switch does not depend on its
emulators or tools, and every `cardswitch` command module follows one convention."""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import tomllib
from pathlib import Path

from switch import cli

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_THE_SWITCH = ("emulators", "tools")
# A module name in source text: an import, or a string handed to importlib or an entry point.
NAMED_OUTSIDE = re.compile(r"\b(?:emulators|tools)\.[A-Za-z_]")
IO_MODULES = {"trio", "socket", "sqlite3", "threading", "asyncio", "selectors", "subprocess", "outcome",
              "psycopg", "ssl", "os", "time"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imported_from(package: str) -> dict[str, set[str]]:
    return {str(path.relative_to(ROOT)): _imports(path) for path in (ROOT / package).rglob("*.py")}


def test_the_core_imports_no_io_and_no_clock():
    """Decisions take values (the time included) and return values; the service does the rest."""
    modules = {**_imported_from("switch/core"), "switch/routing.py": _imports(ROOT / "switch/routing.py")}
    offenders = {path: sorted(name for name in names if name.split(".")[0] in IO_MODULES)
                 for path, names in modules.items()}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_core_imports_only_the_core_the_wire_format_and_the_routing_table():
    allowed = ("switch.core", "switch.wire", "switch.errors", "switch.routing")
    offenders = {path: sorted(name for name in names
                              if name.startswith("switch") and not name.startswith(allowed))
                 for path, names in _imported_from("switch/core").items()}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_switch_imports_no_emulator_and_no_tool():
    imported = {path: sorted(name for name in names if name.split(".")[0] in OUTSIDE_THE_SWITCH)
                for path, names in _imported_from("switch").items()}
    assert {path: names for path, names in imported.items() if names} == {}
    named = {str(path.relative_to(ROOT)): NAMED_OUTSIDE.findall(path.read_text())
             for path in (ROOT / "switch").rglob("*.py")}
    assert {path: names for path, names in named.items() if names} == {}


def _command_modules(package: str) -> set[str]:
    return {f"{package}.cli.{path.stem}" for path in (ROOT / package / "cli").glob("*.py")
            if path.stem not in ("__init__", "__main__")}


def test_every_command_module_has_register_and_is_gathered():
    """switch/cli/ lists its own modules; emulators/cli/ and tools/cli/ contribute theirs through
    the entry points in pyproject.toml, one per command, named after it, each pointing at
    `register`."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][cli.ENTRY_POINT_GROUP]
    assert {f"switch.cli.{name}" for name in cli.COMMANDS} == _command_modules("switch")
    assert {value.removesuffix(":register") for value in declared.values()} == \
        _command_modules("emulators") | _command_modules("tools")
    assert all(value.endswith(f".cli.{name}:register") for name, value in declared.items())
    for module in _command_modules("switch") | _command_modules("emulators") | _command_modules("tools"):
        assert callable(getattr(importlib.import_module(module), "register", None)), module


def test_the_parser_has_every_command_once():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][cli.ENTRY_POINT_GROUP]
    [commands] = [action for action in cli.build_parser()._actions
                  if isinstance(action, argparse._SubParsersAction)]
    assert sorted(commands.choices) == sorted([*cli.COMMANDS, *declared])
