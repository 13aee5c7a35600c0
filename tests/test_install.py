"""A plain ``pip install amplitude-async`` (no extras), in a fresh virtual environment.

The SDK works, and the ``amplitude-async`` command prints one line naming
``pip install 'amplitude-async[cli]'`` and exits 1 instead of a ModuleNotFoundError.
The install reaches the package index for aiohttp, msgspec and anyio (pip's cache
usually has them); if pip cannot install at all, the test is skipped and says why.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Artefacts and caches that a copy of the checkout must not carry along.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


# It installs a copy of the source tree into a venv of its own: the build under test
# does not matter, so the compiled pass of make test skips it.
@pytest.mark.slow
@pytest.mark.build_independent
def test_install_without_extras_gives_the_sdk_and_a_one_line_hint(tmp_path: Path) -> None:
    # A copy: pip builds in the source tree, and the checkout must stay clean.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    bin_dir = venv / "bin"
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile", str(source)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if install.returncode != 0:
        pytest.skip(f"pip could not install the package here: {install.stderr[-500:]}")

    sdk = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import amplitude_async as aa; print(aa.Identify(user_id='user-1').set('p', 1))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Identify(user_id='user-1'" in sdk.stdout

    for argv in ([], ["--help"], ["identify", "--user-id", "user-1", "--set", "plan=pro"]):
        done = subprocess.run(
            [str(bin_dir / "amplitude-async"), *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert "pip install 'amplitude-async[cli]'" in lines[0]
        assert "pip install '.[cli]'" in lines[0]
        assert "Traceback" not in done.stderr
