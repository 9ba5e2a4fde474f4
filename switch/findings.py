"""One problem found in a data file (a routing table, a risk rules file), located by line: what
`routes check` and `risk check` print, and what their loaders raise the first error of."""

from __future__ import annotations

import attrs

ERROR = "error"
WARNING = "warning"


@attrs.frozen
class Finding:
    severity: str  # ERROR makes the file unusable; WARNING is worth a look
    line: int | None
    key: str  # e.g. "routes[3].high", "rules[1].deny"; "" for the file as a whole
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def location(self, path: str) -> str:
        return f"{path}:{self.line}" if self.line else path

    def format(self, path: str) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{self.location(path)}: {self.severity}:{key} {self.message}"

    def as_json(self) -> dict[str, object]:
        return attrs.asdict(self)
