"""Reading TOML config and data files with errors that name the file, the key and the expectation.

`Table` wraps one TOML table and its dotted location, so every loader asks for keys the same
way and every mistake reads like `switch.toml: issuers[1].port: an integer from 1 to 65535`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Callable

from switch.errors import ConfigError

_MISSING = object()


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "an existing TOML file") from None
    except OSError as exc:
        raise ConfigError(path, "(file)", f"a readable file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(file)", f"valid TOML ({exc})") from None


class Table:
    """One TOML table being read; unknown keys are reported by `finish()`."""

    def __init__(self, file: str | Path, where: str, data: Any):
        self.file = str(file)
        self.where = where
        if not isinstance(data, dict):
            raise ConfigError(self.file, where or "(top level)", "a table")
        self.data = data
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, expected: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), expected)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = _MISSING,
            expected: str = "", check: Callable[[Any], bool] | None = None) -> Any:
        """The value of `name`, of type `kind` and passing `check`; `default` when absent."""
        self._read.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise self.error(name, f"a value ({expected or _kind_name(kind)}) but it is missing")
            return default
        value = self.data[name]
        wrong_type = not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float)))
        if wrong_type or (check is not None and not check(value)):
            raise self.error(name, expected or _kind_name(kind))
        return value

    def tables(self, name: str) -> list[Table]:
        """An array of tables (`[[name]]`), possibly absent."""
        raw = self.get(name, list, [], "an array of tables")
        return [Table(self.file, f"{self.key(name)}[{i}]", item) for i, item in enumerate(raw)]

    def table(self, name: str) -> Table:
        return Table(self.file, self.key(name), self.get(name, dict, {}, "a table"))

    def unread(self) -> dict[str, Any]:
        """The keys nobody asked for, for files that carry free-form extras."""
        return {k: v for k, v in self.data.items() if k not in self._read}

    def finish(self, *ignored: str) -> None:
        unknown = set(self.data) - self._read - set(ignored)
        if unknown:
            known = ", ".join(sorted(self._read)) or "none"
            raise self.error(sorted(unknown)[0], f"not a known key (known here: {known})")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "an array", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
