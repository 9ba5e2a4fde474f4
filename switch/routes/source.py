"""Reading routing tables: a routes TOML file, a CSV BIN file, or a switch config.

All three give a `RoutesFile`: the entries that could be read, the issuers the file defines,
and a Finding for every entry that could not be read, so `routes check` reports every bad
entry at once while `load_routing_file` stops at the first. Unknown keys in `[[issuers]]` (the
link settings: host, port, dialect, timeout_ms...) are the switch's business and are ignored.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import attrs

from switch.errors import ConfigError
from switch.routes.csvfile import read_csv_routes
from switch.findings import ERROR, Finding
from switch.routes.lines import header_lines
from switch.routing import RouteEntry, parse_route


@attrs.frozen
class RoutesFile:
    path: str
    entries: tuple[RouteEntry, ...]
    # Issuer name -> line of its [[issuers]] header (None when unknown); None when the file
    # defines no issuers at all (a bare routes file or a CSV), so names cannot be checked.
    issuers: dict[str, int | None] | None
    problems: tuple[Finding, ...] = ()


def read_routes_file(path: str | Path) -> RoutesFile:
    """Read a table; a file that cannot be read at all raises ConfigError."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        entries, problems = read_csv_routes(path, read_text(path))
        return RoutesFile(str(path), tuple(entries), None, tuple(problems))
    return _read_toml(path)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # BIN files often start with a BOM
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "an existing file") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "(file)", "UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(path, "(file)", f"a readable file ({exc.strerror})") from None


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """tomllib, with its error turned into file:line: (file): valid TOML (...)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        raise ConfigError(where, "(file)", f"valid TOML ({exc})") from None


def _read_toml(path: Path) -> RoutesFile:
    text = read_text(path)
    data = parse_toml(path, text)
    issuers, problems = _issuers(path, text, data.get("issuers"))
    if "routes_file" in data:
        return _follow(path, data, issuers, problems)
    raw = data.get("routes", [])
    if not isinstance(raw, list):
        raise ConfigError(path, "routes", "an array of tables ([[routes]])")
    lines: Sequence[int | None] = header_lines(text, "routes", len(raw)) or [None] * len(raw)
    entries = []
    for index, (item, line) in enumerate(zip(raw, lines)):
        try:
            entries.append(parse_route(path, index, item, None, line))
        except ConfigError as exc:
            problems.append(Finding(ERROR, line, exc.key, exc.expected))
    return RoutesFile(str(path), tuple(entries), issuers, tuple(problems))


def _follow(path: Path, data: dict[str, Any], issuers: dict[str, int | None] | None,
            problems: list[Finding]) -> RoutesFile:
    """A switch config with `routes_file = "..."`: the routes come from there (relative to the
    config), the issuers from both files."""
    target = data["routes_file"]
    if not isinstance(target, str) or not target:
        raise ConfigError(path, "routes_file", "a path to a routes TOML or CSV file")
    if "routes" in data:
        raise ConfigError(path, "routes_file", "either routes_file or [[routes]], not both")
    routes = read_routes_file(path.parent / target)
    if routes.issuers is not None:
        issuers = {**(issuers or {}), **routes.issuers}
    return RoutesFile(routes.path, routes.entries, issuers, tuple(problems) + routes.problems)


def _issuers(path: Path, text: str, raw: Any) -> tuple[dict[str, int | None] | None, list[Finding]]:
    if raw is None:
        return None, []
    if not isinstance(raw, list):
        raise ConfigError(path, "issuers", "an array of tables ([[issuers]])")
    lines: Sequence[int | None] = header_lines(text, "issuers", len(raw)) or [None] * len(raw)
    issuers: dict[str, int | None] = {}
    problems = []
    for index, (item, line) in enumerate(zip(raw, lines)):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(Finding(ERROR, line, f"issuers[{index}].name", "the issuer's name (a non-empty string)"))
        elif name in issuers:
            problems.append(Finding(ERROR, line, f"issuers[{index}].name", f"a name not already used ({name!r} repeats line {issuers[name]})"))
        else:
            issuers[name] = line
    return issuers, problems
