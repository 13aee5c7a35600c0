"""Reliability suite: one summary line per run, shown at the end of every pytest run.

Each run records what it tried (operations, users, requests, faults injected, receipts,
outcomes, duplicates) with ``record_property`` (JUnit XML) and prints it; the lines are
also collected here and written in the terminal summary, so a CI log shows them even
under ``pytest -q``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_LINES: list[str] = []


@pytest.fixture
def summary(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    """``summary(name, line)``: record one run's counts for the CI log."""

    def record(name: str, line: str) -> None:
        record_property(name, line)
        text = f"{name}: {line}"
        print(text)
        _LINES.append(text)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("reliability runs: what was tried")
        for line in _LINES:
            terminalreporter.write_line(line)
