"""Output files the tools' commands write after a run (`--json`, `--plot`, `--junit`).

Checked before the run starts, so a typo in the path costs one line and exit 2, not a
minutes-long run followed by a traceback.
"""

from __future__ import annotations

from pathlib import Path

from switch.errors import UsageError


def check_writable(path: str | Path | None, option: str) -> None:
    """A usage error naming `option` and the path unless a file can be written there; nothing
    is left behind by the check (an existing file is opened for appending, not truncated)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a directory, expected a file to write")
    existed = target.exists()
    try:
        with open(target, "a"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None
    if not existed:
        target.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, option: str) -> None:
    """Write the file, a usage error naming `option` if that fails after all (the check came first)."""
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None
