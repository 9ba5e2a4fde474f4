"""Reading and checking BIN routing tables: routes TOML, CSV BIN files, switch configs.

`load_routing_file(path)` is what a running switch calls to (re)load a table: it reads a routes
file (TOML, CSV, or a switch config naming one with `routes_file`), runs every check, and raises
ConfigError naming the first error, so an invalid table never replaces a working one.
"""

from __future__ import annotations

from pathlib import Path

from switch.errors import ConfigError
from switch.routes.check import check
from switch.routes.source import read_routes_file
from switch.routing import RoutingTable, paused_gc


def load_routing_file(path: str | Path) -> RoutingTable:
    """The table in `path`, fully validated; ConfigError (file:line: key: expected) if invalid."""
    with paused_gc():
        routes = read_routes_file(path)
        table = RoutingTable(routes.entries)
        errors = [finding for finding in check(routes, table) if finding.is_error]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors; run `cardswitch routes check`)" if len(errors) > 1 else ""
        raise ConfigError(first.location(routes.path), first.key or "routes", first.message + more)
    return table
