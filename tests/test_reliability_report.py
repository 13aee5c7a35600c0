"""The reliability suite's report stays out of pytest's output unless asked for.

A pytest run in a temporary folder loads the reliability conftest as a plugin and runs a
test that records one summary line, without and with AMPLITUDE_RELIABILITY_REPORT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = """
def test_one_run(summary):
    summary("faults[reset]", "ops=10 outcomes=10 duplicates=0")
"""


def run(tmp_path: Path, report: str | None) -> str:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_run.py").write_text(TEST)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AMPLITUDE_RELIABILITY_REPORT", None)
    if report is not None:
        env["AMPLITUDE_RELIABILITY_REPORT"] = report
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-p", "tests.reliability.conftest", "test_run.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_by_default_the_output_is_pytests_own(tmp_path: Path) -> None:
    out = run(tmp_path, None)
    assert "reliability runs" not in out
    assert "ops=10" not in out
    assert "1 passed" in out


def test_a_file_gets_the_report_and_the_terminal_one_line(tmp_path: Path) -> None:
    report = tmp_path / "out" / "reliability.txt"
    out = run(tmp_path, str(report))
    assert report.read_text() == "faults[reset]: ops=10 outcomes=10 duplicates=0\n"
    assert "ops=10" not in out
    assert f"reliability runs: 1 lines in {report}" in out


@pytest.mark.parametrize("value", ["-"])
def test_a_dash_prints_the_report_in_the_terminal_summary(tmp_path: Path, value: str) -> None:
    out = run(tmp_path, value)
    assert "reliability runs: what was tried" in out
    assert "faults[reset]: ops=10 outcomes=10 duplicates=0" in out
