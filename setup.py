"""Build script: compiles the pure hot modules with mypyc where it can, else stays pure.

Everything declarative lives in pyproject.toml; this file only adds the optional compiled
extension. The list of compiled modules is ``[tool.amplitude-async.mypyc] modules`` in
pyproject.toml (one place; docs/build.md says how it is chosen).

``AMPLITUDE_ASYNC_MYPYC`` picks the build:

- ``auto`` (the default): compile when mypyc imports (it is in the build requirements)
  and a C compiler can build a Python extension here; otherwise, or if compiling fails,
  build the same package in pure Python and say why on stderr;
- ``1``: compile, and fail the build if that is not possible (CI uses this, so a broken
  compiled build cannot pass as a pure one);
- ``0``: pure Python.

Editable installs (``pip install -e``) are pure unless ``AMPLITUDE_ASYNC_MYPYC=1``: a
compiled module in the source tree would shadow the code being edited.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
ENV = "AMPLITUDE_ASYNC_MYPYC"

#: setup.py commands that produce compiled code; metadata-only and editable runs do not.
_BUILDING = {"bdist_wheel", "build", "build_ext", "install"}


def compiled_modules(root: Path = ROOT) -> list[str]:
    """The modules to compile, as paths relative to ``root`` (from pyproject.toml)."""
    with open(root / "pyproject.toml", "rb") as handle:
        config = tomllib.load(handle)
    modules: list[str] = config["tool"]["amplitude-async"]["mypyc"]["modules"]
    return modules


def mode() -> str:
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in {"auto", "0", "1"}:
        raise SystemExit(f"{ENV} must be auto, 0 or 1, not {value!r}")
    return value


def _note(text: str) -> None:
    print(f"amplitude-async build: {text}", file=sys.stderr, flush=True)


def compiler_problem() -> str | None:
    """Why no Python extension can be compiled here, or None if one can.

    The check the fallback rests on: compile and link a one-line extension source with
    the compiler and flags this interpreter was built with (``CC`` overrides, as in any
    setuptools build), against this interpreter's headers.
    """
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"no Python.h under {include} (install the Python development headers)"
    # From "distutils" as setuptools provides it (setuptools is imported above), so the
    # errors caught are the classes the compiler raises.
    from distutils.ccompiler import new_compiler
    from distutils.errors import CCompilerError, DistutilsError
    from distutils.sysconfig import customize_compiler

    compiler: Any = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text("#include <Python.h>\nint amplitude_async_probe(void) { return 0; }\n")
        try:
            objects = compiler.compile([str(source)], output_dir=tmp, include_dirs=[include])
            compiler.link_shared_object(objects, str(Path(tmp) / "probe.so"))
        except (CCompilerError, DistutilsError, OSError) as exc:
            return f"the C compiler does not work here ({exc})"
    return None


class OptionalBuildExt(build_ext):
    """build_ext that, in ``auto`` mode, falls back to pure Python when compiling fails.

    The pure modules are in the wheel either way; without the extension they are what
    gets imported. (An extension module, when present, wins over the .py beside it.)
    """

    def run(self) -> None:
        from distutils.errors import CCompilerError, DistutilsError

        try:
            super().run()
        except (CCompilerError, DistutilsError, OSError) as exc:
            if mode() == "1":
                raise
            _note(f"compiling failed ({type(exc).__name__}: {exc}); building pure Python")
            self.extensions = []
            self.distribution.ext_modules = []


def remove_stale_extensions(root: Path = ROOT) -> list[Path]:
    """Delete compiled modules an earlier build left under build/lib*: setuptools would
    otherwise pack them into a pure wheel, where they would shadow the .py files."""
    stale = [
        path
        for lib in (root / "build").glob("lib*")
        for pattern in ("*__mypyc*", "amplitude_async/**/*.so", "amplitude_async/**/*.pyd")
        for path in lib.glob(pattern)
    ]
    for path in stale:
        path.unlink()
    return stale


def pure() -> list[Any]:
    if _BUILDING.intersection(sys.argv):
        remove_stale_extensions()
    return []


def ext_modules() -> list[Any]:
    choice = mode()
    editable = "editable_wheel" in sys.argv
    if choice == "0":
        return pure()
    if choice == "auto" and (editable or not _BUILDING.intersection(sys.argv)):
        return pure()
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        if choice == "1":
            raise
        _note(f"mypyc is not importable ({exc}); building pure Python")
        return pure()
    problem = compiler_problem()
    if problem is not None:
        if choice == "1":
            raise SystemExit(f"{ENV}=1 but {problem}")
        _note(f"{problem}; building pure Python")
        return pure()
    modules = compiled_modules()
    _note(f"compiling {len(modules)} modules with mypyc")
    try:
        extensions: list[Any] = mypycify(
            modules,
            opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
            debug_level=os.environ.get("MYPYC_DEBUG_LEVEL", "1"),
        )
    except SystemExit as exc:
        # mypycify exits when mypy reports an error (for example a stub it cannot find).
        if choice == "1":
            raise
        _note(f"mypyc refused the modules (exit {exc.code}); building pure Python")
        return pure()
    return extensions


if __name__ == "__main__":
    setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
