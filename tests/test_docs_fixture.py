"""docs/emulator.md's pytest example, run as written in a new pytest project.

The project is a temporary folder with the snippet as its only test file and an empty
pytest.ini, so nothing of this repository's configuration (asyncio_mode = "auto")
applies: what the docs say is needed must be in the snippet.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "emulator.md"


def fixture_snippet() -> str:
    section = DOC.read_text(encoding="utf-8").split("## pytest fixture", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no ```python block under '## pytest fixture' in docs/emulator.md"
    return match.group(1)


def run_project(tmp_path: Path, test_file: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_app.py").write_text(test_file)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_documented_fixture_example_passes_in_a_new_project(tmp_path: Path) -> None:
    done = run_project(tmp_path, fixture_snippet())
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b2 passed\b", done.stdout), done.stdout


def test_without_the_marker_the_async_example_fails_as_the_docs_say(tmp_path: Path) -> None:
    # The reason the marker is in the snippet: without it (and without asyncio_mode),
    # pytest cannot run the async test.
    snippet = fixture_snippet().replace("@pytest.mark.anyio\n", "")
    done = run_project(tmp_path, snippet)
    assert done.returncode != 0
    assert "async def functions are not natively supported" in done.stdout + done.stderr
