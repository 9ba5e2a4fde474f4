"""JUnit XML for the table-driven test commands (`routes test`, `risk test`), so CI shows each
case as a test. A case is a name and, when it failed, what went wrong (already masked)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

from switch.errors import UsageError


def write_junit(path: str, suite: str, cases: Sequence[tuple[str, str | None]]) -> None:
    """One <testcase> per (name, failure): failure None means it passed."""
    failures = sum(failure is not None for _, failure in cases)
    root = ElementTree.Element("testsuite", name=suite, tests=str(len(cases)), failures=str(failures), errors="0")
    for name, failure in cases:
        case = ElementTree.SubElement(root, "testcase", classname=suite, name=name)
        if failure is not None:
            ElementTree.SubElement(case, "failure", message=failure.splitlines()[0]).text = failure
    try:
        ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write ({exc.strerror})") from None
