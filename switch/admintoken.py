"""The admin port's token: 32 random bytes in hex, in a file only its owner may read.

The switch makes it at its first start with an admin port (`DATA_DIR/admin.token`, mode 0600),
and reads it at every start after; `cardswitch admin` reads the same file. Whoever can read the
file may operate the switch, exactly as whoever can read `data.key` may read the journal: keep
the data directory the switch's own. A token file that others may read, or that holds no token,
stops the switch with one line rather than be trusted.
"""

from __future__ import annotations

import os
import secrets
import stat
import string
from pathlib import Path

from switch.errors import ConfigError

TOKEN_FILE = "admin.token"
TOKEN_BYTES = 32


def is_token(text: str) -> bool:
    return len(text) == 2 * TOKEN_BYTES and all(c in string.hexdigits for c in text)


def ensure_token(path: Path) -> str:
    """The token in `path`, made (mode 0600) when there is none yet. Several processes starting
    at once (`serve --workers`) agree: the file appears whole, under its name, once."""
    if not path.exists():
        try:
            _make(path)
        except OSError as exc:
            raise ConfigError(path, "(file)", f"a place to write the admin token ({exc.strerror or exc})") from None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigError(path, "(file)", "an admin token only its owner may read (chmod 600)")
    return read_token(path)


def _make(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(TOKEN_BYTES) + "\n")
    try:
        os.link(scratch, path)  # never replaces a token another process made meanwhile
    except FileExistsError:
        pass
    finally:
        scratch.unlink()


def read_token(path: Path) -> str:
    """The token in `path`; ConfigError naming the file when it cannot be read or holds none."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(path, "(file)", f"a readable admin token ({reason})") from None
    if not is_token(token):
        raise ConfigError(path, "(file)", f"an admin token: {2 * TOKEN_BYTES} hex digits")
    return token
