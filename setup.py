"""The compiled forms of the switch's hot modules (switch/compiled.py lists them): Cython
compiles their unchanged Python source when the package is installed. Without a C compiler, or
if compiling fails, the install goes on and those modules run as Python: the same results
(tests/test_compiled.py), more CPU per transaction. Set CARDSWITCH_PURE_PYTHON=1 to build none.
Everything else about the package is in pyproject.toml."""

import os
import runpy
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Compiling is an optimisation: a failure is reported, never fatal."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1  # one module per core

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: run as Python
            print(f"cardswitch: not compiling the hot modules ({exc}); they run as Python", file=sys.stderr)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"cardswitch: {ext.name} not compiled ({exc}); it runs as Python", file=sys.stderr)


def compiled_modules() -> list:
    if os.environ.get("CARDSWITCH_PURE_PYTHON") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("cardswitch: Cython is not installed; the hot modules run as Python", file=sys.stderr)
        return []
    modules = runpy.run_path(os.path.join("switch", "compiled.py"))["MODULES"]
    sources = [module.replace(".", "/") + ".py" for module in modules]
    # Annotations stay hints, as in Python: typed by them, Cython would refuse a str subclass
    # (a response code, a StrEnum) where `str` is written, and the two forms would differ.
    return cythonize(sources, build_dir="build/cython", language_level=3, quiet=True,
                     compiler_directives={"annotation_typing": False})


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
