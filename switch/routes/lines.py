"""Line numbers of array-of-tables headers: `[[routes]]`, `[[issuers]]`, `[[rules]]`, and
nested ones such as `[[cases.requests]]`.

tomllib reports no positions, but messages about a table of thousands of entries are useless
without a line, so the text is scanned for array-of-tables headers. If the scan cannot be
trusted (its count differs from what tomllib parsed, e.g. a header-like line inside a multi-line
string, or entries written as inline tables) no lines are given rather than wrong ones.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*(\w+(?:[ \t]*\.[ \t]*\w+)*)[ \t]*\]\]", re.MULTILINE)


def header_lines(text: str, name: str, count: int) -> list[int] | None:
    """The 1-based line of each `[[name]]` header (a dotted name for nested arrays), or None when
    they cannot be told apart."""
    lines: list[int] = []
    line, position = 1, 0
    for match in _HEADER.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        if re.sub(r"[ \t]", "", match.group(1)) == name:
            lines.append(line)
    return lines if len(lines) == count else None
