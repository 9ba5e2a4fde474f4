"""The architecture as tests: the core stays free of I/O, and the switch does not depend on
its emulators."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
