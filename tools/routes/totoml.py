"""Routes entries written out as a routes TOML file: what `cardswitch routes import` prints for a
CSV BIN file, for review, and what `routes bench --load toml` reads back."""

from __future__ import annotations

import io
from typing import Iterable

from switch.routing import CONDITIONS, RouteEntry


def to_toml(entries: Iterable[RouteEntry], issuers: Iterable[str] = ()) -> str:
    """A routes TOML file for the entries (and `[[issuers]]` stubs for the names given)."""
    out = io.StringIO()
    for name in issuers:
        out.write(f"[[issuers]]\nname = {_string(name)}\n\n")
    for entry in entries:
        out.write("[[routes]]\n")
        if entry.low == entry.high:
            out.write(f'prefix = "{entry.low}"\n')
        else:
            out.write(f'low = "{entry.low}"\nhigh = "{entry.high}"\n')
        out.write(f"issuer = {_string(entry.issuer)}\n")
        if entry.priority:
            out.write(f"priority = {entry.priority}\n")
        if entry.fallback:
            out.write(f"fallback = {_string(entry.fallback)}\n")
        for key, value in zip(CONDITIONS, entry.conditions.as_tuple() if entry.conditions else ()):
            if value is not None:
                out.write(f"{key} = [{', '.join(_string(v) for v in sorted(value))}]\n")
        out.write("\n")
    return out.getvalue()


def _string(value: str) -> str:
    """A TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
