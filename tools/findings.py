"""How the check commands (`routes check`, `risk check`) report their findings: one line each
(file:line: severity: key: message) and a count, or one JSON document; exit 1 on any error."""

from __future__ import annotations

import json
from collections.abc import Sequence

from switch.findings import Finding


def report(path: str, counted: dict[str, int], findings: Sequence[Finding], as_json: bool) -> int:
    """Print the findings about `path`; `counted` is what the file holds (e.g. {"entries": 12}).
    Returns the exit code."""
    errors = sum(finding.is_error for finding in findings)
    warnings = len(findings) - errors
    if as_json:
        print(json.dumps({"file": path, **counted, "errors": errors, "warnings": warnings,
                          "findings": [finding.as_json() for finding in findings]}, indent=2))
    else:
        for finding in findings:
            print(finding.format(path))
        sizes = ", ".join(f"{count} {noun}" for noun, count in counted.items())
        print(f"{path}: {sizes}, {errors} errors, {warnings} warnings")
    return 1 if errors else 0
