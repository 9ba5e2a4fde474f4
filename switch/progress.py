"""Progress bars for long commands, on a terminal only.

`bar()` draws on stderr when it is a TTY and is a silent no-op otherwise (CI logs, pipes), so
a command's output is the same with or without it there.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def bar(total: int | None, desc: str, unit: str = "step", stream: TextIO | None = None) -> tqdm:
    """A progress bar of `total` units (None: a counter) on `stream` (stderr), drawn only on a
    terminal and cleared when closed."""
    stream = sys.stderr if stream is None else stream
    return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True,
                disable=not stream.isatty())
