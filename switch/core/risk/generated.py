"""Python functions written for one rule set, the way attrs and dataclasses write theirs.

A rules file is fixed until it is reloaded, so the engine runs each moment of a request (rate
limits, the other rules) as one function written for that file: every rule in file order, its
scope and its cheap tests inline, the request's values read once. A loop over judges costs a
call per scope test and per rule, more than most rules' own work. The source stays readable:
`RiskEngine.source()` shows it, and tracebacks show its lines. Values that could be card
numbers (BIN scopes can be a whole PAN) are named constants, never written into the source.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
from typing import Any, Callable

import attrs

from switch.core.risk.facts import Facts

FACT_NAMES = frozenset(field.name for field in attrs.fields(Facts))  # read as locals of the same name


class Code:
    """A generated function's body and the values its source names."""

    def __init__(self, namespace: dict[str, Any] | None = None) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = dict(namespace or {})

    def constant(self, stem: str, value: Any) -> str:
        """A name for `value` in the function's namespace."""
        name = f"{stem}_{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def add(self, *lines: str, indent: int = 0) -> None:
        self.lines.extend("    " * indent + line for text in lines for line in text.splitlines())

    def function(self, name: str, parameters: str) -> Callable[..., Any]:
        """The function, with the request's values it reads as locals (`country = facts.country`),
        but for those that are its parameters."""
        read = sorted(FACT_NAMES & _names(self.lines) - {name.strip() for name in parameters.split(",")})
        body = [f"{fact} = facts.{fact}" for fact in read] + self.lines
        source = f"def {name}({parameters}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
        filename = f"<risk {name} {hashlib.sha256(source.encode()).hexdigest()[:12]}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
        namespace = dict(self.namespace)
        exec(compile(source, filename, "exec"), namespace)
        function: Callable[..., Any] = namespace[name]
        function.__doc__ = source  # what `RiskEngine.source()` shows
        return function


def _names(lines: list[str]) -> set[str]:
    """Every name the lines read: which of the request's values to read first."""
    tree = ast.parse("def probe():\n" + "".join(f"    {line}\n" for line in lines or ["pass"]))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
