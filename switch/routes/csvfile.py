"""BIN tables as networks ship them: CSV with a header row, one range per row.

Recognised columns (case and spaces aside: "BIN Low" is `bin_low`): `bin_low` and `bin_high` (or `prefix`/`bin` for a single prefix), `issuer`,
and optionally `priority`, `fallback`, and the conditions `processing_codes`, `mti_classes`,
`currencies` (values separated by spaces or `;`). Other columns (brand, country, product...) are
ignored, since network files carry many. Each row becomes the same entry a `[[routes]]` table
would, checked by the same code (`cardswitch routes import` writes them back as a routes file for review).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from switch.errors import ConfigError
from switch.findings import ERROR, Finding
from switch.routing import CONDITIONS, RouteEntry, parse_route

_COLUMNS = {"bin_low": "low", "bin_high": "high", "prefix": "prefix", "bin": "prefix", "issuer": "issuer",
            "fallback": "fallback", **{key: key for key in CONDITIONS}}


def read_csv_routes(path: Path, text: str) -> tuple[list[RouteEntry], list[Finding]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower().replace(" ", "_") for name in next(reader, [])]
    if "issuer" not in header or not ({"bin_low", "bin_high"} <= set(header) or {"prefix", "bin"} & set(header)):
        raise ConfigError(f"{path}:1", "(header)", "columns bin_low, bin_high (or prefix) and issuer")
    columns = [(position, _COLUMNS[name]) for position, name in enumerate(header) if name in _COLUMNS]
    priority_at = header.index("priority") if "priority" in header else None
    entries: list[RouteEntry] = []
    problems: list[Finding] = []
    for index, row in enumerate(reader):
        line = reader.line_num
        if not "".join(row).strip():
            continue
        raw: dict[str, object] = {}
        for position, key in columns:
            cell = row[position].strip() if position < len(row) else ""
            if cell:
                raw[key] = re.split(r"[;\s]+", cell) if key in CONDITIONS else cell
        if priority_at is not None and priority_at < len(row) and row[priority_at].strip():
            cell = row[priority_at].strip()
            raw["priority"] = int(cell) if re.fullmatch(r"-?\d+", cell) else cell
        try:
            entries.append(parse_route(path, index, raw, None, line))
        except ConfigError as exc:
            problems.append(Finding(ERROR, line, exc.key, exc.expected))
    return entries, problems
