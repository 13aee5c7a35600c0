"""Start-up cost: ``import amplitude_async`` and ``amplitude-async --help`` stay light.

The package namespace imports its names on first use, so the command line's help (and
anything else that only needs a corner of the package) does not pay for aiohttp. The
timing bound is generous on purpose: the machines that run this are shared; the exact
figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import amplitude_async as aa

SCRIPT = Path(sys.executable).with_name("amplitude-async")
HEAVY = ("aiohttp", "anyio", "msgspec", "amplitude_async._client", "amplitude_async._profile")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_importing_the_package_does_not_import_aiohttp() -> None:
    loaded = _modules_after("import amplitude_async")
    assert not loaded & set(HEAVY)


def test_a_name_is_imported_on_first_use() -> None:
    loaded = _modules_after("from amplitude_async import AmplitudeClient")
    assert {"aiohttp", "amplitude_async._client"} <= loaded


def test_every_public_name_has_a_home_and_only_those() -> None:
    homes = aa._HOMES
    assert set(homes) == set(aa.__all__) - {"__version__"}
    for name, home in homes.items():
        module = __import__(f"amplitude_async{home}", fromlist=[name])
        assert getattr(aa, name) is getattr(module, name)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        aa.Nope  # noqa: B018


@pytest.mark.parametrize("argv", [["--help"], ["identify", "--help"], ["import", "--help"]])
def test_help_imports_neither_the_sdk_nor_aiohttp(argv: list[str]) -> None:
    loaded = _modules_after(
        "import sys, contextlib, io\n"
        f"sys.argv = ['amplitude-async', *{argv!r}]\n"
        "from amplitude_async._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()"
    )
    assert "amplitude_async._cli" in loaded
    assert not loaded & set(HEAVY)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")
@pytest.mark.parametrize("argv", [["--help"], ["identify", "--help"]])
def test_help_is_quick(argv: list[str]) -> None:
    # Best of three: one slow run on a busy machine says nothing about the command.
    # Measured on 2 shared cores: --help 0.18-0.23 s, identify --help 0.27-0.35 s.
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run([str(SCRIPT), *argv], capture_output=True, timeout=60, check=False)
        best = min(best, time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
    assert best < 1.0, f"amplitude-async {' '.join(argv)} took {best:.2f} s at best"
