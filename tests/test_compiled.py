"""The hot modules' two forms (switch/compiled.py): compiled by Cython at install where a C
compiler is at hand, Python otherwise or when asked. The rest of the suite runs whichever form
the install built; here the same codec, framing and masking tests run again in the Python form,
and the choice between the forms is checked."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from switch import compiled

ROOT = Path(__file__).resolve().parent.parent
# The tests of what the compiled modules do (the codec against pyiso8583, framing, masking, the
# risk rules' windows against recounts and the engine's decisions).
FORM_TESTS = ["tests/test_fastcodec.py", "tests/test_framing.py", "tests/test_masking.py", "tests/test_field48.py",
              "tests/test_dialects.py", "tests/test_every_dialect.py", "tests/test_risk_windows.py",
              "tests/test_risk_velocity.py", "tests/test_risk_engine.py", "tests/test_txnline.py",
              "tests/test_reasons.py", "tests/test_original_data.py"]


def _forms(env: dict[str, str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", "from switch import compiled; print(*compiled.running().values())"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_an_install_with_a_compiler_runs_every_listed_module_compiled():
    """CI installs with gcc and the Python headers: a build that quietly fell back to Python
    would measure and test the wrong thing."""
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not (shutil.which("cc") or shutil.which("gcc")) or not headers.exists():
        assert all(compiled.compiled_of(module) is None for module in compiled.MODULES)
        return
    assert compiled.running() == {module: "compiled" for module in compiled.MODULES}


def test_the_python_form_is_taken_when_asked():
    env = {**os.environ, compiled.PURE_PYTHON: "1"}
    assert _forms(env) == {"python"}


def test_a_build_older_than_its_source_is_not_run(tmp_path):
    """An edit after the install runs as written, never the stale compiled form."""
    source = tmp_path / "switch" / "wire" / "luhn.py"
    source.parent.mkdir(parents=True)
    source.write_text("")
    assert not compiled.usable("switch.wire.luhn", tmp_path)  # none built
    built = source.with_name("luhn" + importlib.machinery.EXTENSION_SUFFIXES[0])
    built.write_bytes(b"")
    os.utime(source, (1_000_000, 1_000_000))
    os.utime(built, (2_000_000, 2_000_000))
    assert compiled.usable("switch.wire.luhn", tmp_path)
    os.utime(source, (3_000_000, 3_000_000))  # edited since
    assert not compiled.usable("switch.wire.luhn", tmp_path)
    source.unlink()  # shipped compiled alone: nothing else to run
    assert compiled.usable("switch.wire.luhn", tmp_path)


def test_a_build_older_than_the_types_beside_its_source_is_not_run(tmp_path):
    """A module typed by a .pxd (the risk windows) is stale when either file was edited since."""
    source = tmp_path / "switch" / "core" / "risk" / "windows.py"
    source.parent.mkdir(parents=True)
    source.write_text("")
    types = source.with_suffix(".pxd")
    types.write_text("")
    built = source.with_name("windows" + importlib.machinery.EXTENSION_SUFFIXES[0])
    built.write_bytes(b"")
    for path, moment in ((source, 1_000_000), (types, 1_000_000), (built, 2_000_000)):
        os.utime(path, (moment, moment))
    assert compiled.usable("switch.core.risk.windows", tmp_path)
    os.utime(types, (3_000_000, 3_000_000))  # the types edited, not the source
    assert not compiled.usable("switch.core.risk.windows", tmp_path)


def test_the_python_form_passes_the_same_tests():
    env = {**os.environ, compiled.PURE_PYTHON: "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", *FORM_TESTS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


def test_compiled_velocity_events_are_out_of_the_collectors_sight():
    """The risk windows' events and totals hold C values only where windows.pxd types them, so
    the cyclic collector never walks the millions a busy day keeps (docs/risk.md, "A sixth
    round"): a field that could hold any object would put them back in its sight."""
    import gc

    from switch.core.risk.windows import SlidingTotals

    window = SlidingTotals(60.0)
    event = window.add("a PAN hash", 0.0, 100)
    if compiled.running()["switch.core.risk.windows"] == "python":
        assert gc.is_tracked(event)  # a Python object with slots always is
        return
    assert not gc.is_tracked(event)
    keys = next(held for held in gc.get_referents(window) if isinstance(held, dict))  # key -> its Totals
    assert keys and not any(gc.is_tracked(totals) for totals in keys.values())
