"""The compiled build: the list of compiled modules, the fallback to pure Python, and which
build this test run imported.

``make test`` runs the suite twice: on the editable (pure) install with
``AMPLITUDE_ASYNC_EXPECT_BUILD=pure``, then on ``pip install .`` in a second venv with
``AMPLITUDE_ASYNC_EXPECT_BUILD=compiled`` (docs/build.md). The last test here is what
proves that second run tested the compiled modules and not the source tree.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import amplitude_async

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "setup.py"

pytestmark = pytest.mark.skipif(not SETUP.exists(), reason="no setup.py in this checkout")


def load_setup() -> ModuleType:
    """setup.py as a module; its ``setup()`` call only runs as ``__main__``."""
    spec = importlib.util.spec_from_file_location("amplitude_async_setup", SETUP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def is_compiled(module: ModuleType) -> bool:
    return (module.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_every_listed_module_exists_and_is_a_core_module() -> None:
    modules = load_setup().compiled_modules()
    assert modules, "the compiled list is empty"
    assert modules == sorted(set(modules)), "keep the list sorted and without repeats"
    for path in modules:
        assert (ROOT / path).is_file(), f"{path} is listed for mypyc but does not exist"
        # The CLI and the emulator stay interpreted (docs/build.md).
        assert path.startswith("amplitude_async/_") and path.count("/") == 1, path


def test_mode_accepts_auto_0_1_and_refuses_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = load_setup()
    for value, expected in (("", "auto"), ("AUTO", "auto"), ("0", "0"), ("1", "1")):
        monkeypatch.setenv(setup.ENV, value)
        assert setup.mode() == expected
    monkeypatch.setenv(setup.ENV, "yes")
    with pytest.raises(SystemExit, match="auto, 0 or 1"):
        setup.mode()


def test_a_missing_compiler_is_detected_so_the_build_stays_pure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = load_setup()
    monkeypatch.setenv("CC", str(ROOT / "no-such-compiler"))
    problem = setup.compiler_problem()
    assert problem is not None and "compiler" in problem
    monkeypatch.setenv(setup.ENV, "auto")
    monkeypatch.setattr(sys, "argv", ["setup.py", "bdist_wheel"])
    assert setup.ext_modules() == []


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this machine")
def test_a_working_compiler_is_detected() -> None:
    assert load_setup().compiler_problem() is None


def test_editable_and_metadata_runs_do_not_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    setup = load_setup()
    monkeypatch.setenv(setup.ENV, "auto")
    for argv in (
        ["setup.py", "editable_wheel"],
        ["setup.py", "egg_info"],
        ["setup.py", "dist_info"],
    ):
        monkeypatch.setattr(sys, "argv", argv)
        assert setup.ext_modules() == [], argv
    monkeypatch.setenv(setup.ENV, "0")
    monkeypatch.setattr(sys, "argv", ["setup.py", "bdist_wheel"])
    assert setup.ext_modules() == []


def test_stale_compiled_modules_are_removed_from_the_build_dir(tmp_path: Path) -> None:
    setup = load_setup()
    lib = tmp_path / "build" / "lib.linux-x86_64-cpython-311"
    (lib / "amplitude_async").mkdir(parents=True)
    stale = [
        lib / "abc__mypyc.cpython-311-x86_64-linux-gnu.so",
        lib / "amplitude_async" / "_rules.so",
    ]
    keep = lib / "amplitude_async" / "_rules.py"
    for path in [*stale, keep]:
        path.write_bytes(b"")
    assert sorted(setup.remove_stale_extensions(tmp_path)) == sorted(stale)
    assert keep.exists() and not any(path.exists() for path in stale)


def test_this_run_imports_the_build_it_expects() -> None:
    expected = os.environ.get("AMPLITUDE_ASYNC_EXPECT_BUILD")
    if expected is None:
        pytest.skip("AMPLITUDE_ASYNC_EXPECT_BUILD is not set (make test sets it)")
    assert expected in {"pure", "compiled"}
    modules = [importlib.import_module(module_name(p)) for p in load_setup().compiled_modules()]
    package = Path(amplitude_async.__file__).resolve().parent
    if expected == "pure":
        assert not [m.__name__ for m in modules if is_compiled(m)]
        return
    # The installed package, not the source tree beside the tests.
    assert package != ROOT / "amplitude_async", "the source tree shadows the installed package"
    assert [m.__name__ for m in modules if not is_compiled(m)] == []
