"""Reliability suite: one summary line per run, in a report kept out of pytest's output.

Each run records what it tried (operations, users, requests, faults injected, receipts,
outcomes, duplicates) with ``record_property`` (JUnit XML, always) and into a report
that is written only when asked for, so that ``make test`` prints pytest's own output:
``AMPLITUDE_RELIABILITY_REPORT=FILE`` writes it to FILE (one line in the terminal
names it), ``AMPLITUDE_RELIABILITY_REPORT=-`` prints it in the terminal summary under
"reliability runs: what was tried".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

#: The environment variable that asks for the report: a file name, or "-" for the terminal.
REPORT_ENV = "AMPLITUDE_RELIABILITY_REPORT"
_LINES: list[str] = []


@pytest.fixture
def summary(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    """``summary(name, line)``: record one run's counts for the report and JUnit XML."""

    def record(name: str, line: str) -> None:
        record_property(name, line)
        text = f"{name}: {line}"
        print(text)  # captured: shown with the test's output if it fails
        _LINES.append(text)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    where = os.environ.get(REPORT_ENV, "")
    if not _LINES or not where:
        return
    if where == "-":
        terminalreporter.section("reliability runs: what was tried")
        for line in _LINES:
            terminalreporter.write_line(line)
        return
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in _LINES), encoding="utf-8")
    terminalreporter.write_line(f"reliability runs: {len(_LINES)} lines in {path}")
