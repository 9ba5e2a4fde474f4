"""Which of the switch's modules also have a compiled form, and which form runs.

The modules listed here are plain Python, and the same source is compiled by Cython when the
package is installed on a machine with a C compiler (setup.py): no second copy to keep equal,
and without a compiler they simply run as Python. Python picks a compiled module over its
source on its own; this module decides it explicitly instead, so that the Python form runs

- when CARDSWITCH_PURE_PYTHON=1 is set (to compare the two, or to rule the compiled form out),
- when a module's source is newer than its compiled form (edited since the last install:
  a stale build must never hide an edit; `pip install -e .` compiles it again).

`running()` says which form each module runs in (`cardswitch bench` reports it beside its
figures). Only the standard library here: setup.py reads MODULES before anything is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# Hot modules that compile unchanged (docs/performance.md, "compiled modules"): the wire codec
# and what every message passes through, the checks and answer every request gets, the risk
# rules' memory, and the line every transaction logs. Where a .pxd stands beside a module (the
# codec, framing, the message, the request checks, the risk windows, the log line), Cython reads
# the C types of its structures and hot locals from it; the .py never mentions Cython.
MODULES = (
    "switch.core.messages",
    "switch.core.risk.windows",
    "switch.txnline",
    "switch.wire.dialect",
    "switch.wire.fastcodec",
    "switch.wire.field48",
    "switch.wire.framing",
    "switch.wire.headers",
    "switch.wire.luhn",
    "switch.wire.masking",
    "switch.wire.message",
)
PURE_PYTHON = "CARDSWITCH_PURE_PYTHON"  # set to 1: every module above runs as Python
# A wheel's installer writes a module's source and its build in any order within the same
# moment; an edit comes later than that.
SAME_INSTALL = 5.0  # seconds
ROOT = Path(__file__).resolve().parent.parent


def source_of(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def compiled_of(module: str, root: Path = ROOT) -> Path | None:
    """The compiled form of `module` beside its source, if one was built."""
    source = source_of(module, root)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def usable(module: str, root: Path = ROOT) -> bool:
    """Whether `module` runs compiled: built, not older than its source (or the .pxd that types
    it, where there is one), and not ruled out."""
    if os.environ.get(PURE_PYTHON) == "1":
        return False
    built = compiled_of(module, root)
    if built is None:
        return False
    source = source_of(module, root)
    try:
        edited = source.stat().st_mtime
    except FileNotFoundError:  # an install that shipped the compiled form alone
        return True
    types = source.with_suffix(".pxd")
    if types.exists():
        edited = max(edited, types.stat().st_mtime)
    return built.stat().st_mtime + SAME_INSTALL >= edited


class _SourceWhenNotUsable(importlib.abc.MetaPathFinder):
    """Finds a listed module's source when its compiled form must not run; otherwise leaves
    the finding to Python (which takes the compiled form)."""

    def find_spec(self, fullname: str, path: object, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES or usable(fullname):
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def install() -> None:
    """Put the finder first, once (switch/__init__.py calls it before any listed module loads)."""
    if not any(isinstance(finder, _SourceWhenNotUsable) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceWhenNotUsable())


def running() -> dict[str, str]:
    """Module -> "compiled" or "python": the form each listed module was loaded in."""
    forms = {}
    for name in MODULES:
        module = sys.modules.get(name)
        if module is None:
            module = importlib.import_module(name)
        forms[name] = "python" if (module.__file__ or "").endswith(".py") else "compiled"
    return forms
