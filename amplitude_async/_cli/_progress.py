"""Live progress on a terminal: ops/s, delivered, held by throttling, retried, failed.

Refreshed from the event loop (not rich's own refresh thread), so every snapshot of the
client's counters is taken on the loop that changes them. On a console that is not a
terminal (a pipe, CI, a test runner) nothing is drawn; the commands print summaries.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from .. import ClientStats

__all__ = ["LiveProgress", "RateMeter", "Sample", "sample_of"]

_REFRESH: Final = 0.125
#: ops/s is measured over this many seconds, so it follows changes but does not jitter.
_WINDOW: Final = 2.0


@dataclass(frozen=True, slots=True)
class Sample:
    """What the display shows at one moment."""

    delivered: int
    failed: int
    retried: int
    #: Identities held by throttling now, and 429 answers so far.
    held: int
    throttled: int
    #: Operations queued and not settled yet.
    queued: int
    #: Completion from 0 to 1 when known (operations, or bytes of the file read).
    fraction: float | None = None

    @property
    def settled(self) -> int:
        return self.delivered + self.failed


def sample_of(stats: ClientStats, fraction: float | None = None) -> Sample:
    return Sample(
        delivered=stats.delivered,
        failed=stats.failed_total,
        retried=stats.retried,
        held=stats.throttled_identities,
        throttled=stats.throttle_responses,
        queued=stats.queued,
        fraction=fraction,
    )


class RateMeter:
    """Settled operations per second over the last few seconds."""

    def __init__(self, window: float = _WINDOW) -> None:
        self._window = window
        self._points: deque[tuple[float, int]] = deque()

    def update(self, settled: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        points = self._points
        points.append((now, settled))
        while len(points) > 2 and now - points[1][0] >= self._window:
            points.popleft()
        first_time, first_count = points[0]
        elapsed = now - first_time
        return (settled - first_count) / elapsed if elapsed > 0 else 0.0


def render(title: str, sample: Sample, rate: float) -> RenderableType:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    head = Table.grid(padding=(0, 1))
    head.add_row(
        f"[bold]{title}[/bold]",
        ProgressBar(total=1.0, completed=sample.fraction or 0.0, width=36)
        if sample.fraction is not None
        else "",
        f"{sample.fraction:4.0%}" if sample.fraction is not None else "",
        f"[cyan]{rate:,.0f} ops/s[/cyan]",
    )
    line = Table.grid(padding=(0, 3))
    line.add_row(
        f"delivered [green]{sample.delivered:,}[/green]",
        f"held by throttling [yellow]{sample.held:,}[/yellow] (429s: {sample.throttled:,})",
        f"retried {sample.retried:,}",
        f"failed [red]{sample.failed:,}[/red]" if sample.failed else "failed 0",
        f"queued {sample.queued:,}",
    )
    outer = Table.grid()
    outer.add_row(head)
    outer.add_row(line)
    return outer


class LiveProgress:
    """A live display while the ``with`` block runs; start :meth:`run` in a task group.

    Drawn only on a terminal and if ``enabled``; otherwise both are no-ops.
    """

    def __init__(
        self, console: Console, title: str, sample: Callable[[], Sample], *, enabled: bool = True
    ) -> None:
        self._console = console
        self._title = title
        self._sample = sample
        self._enabled = enabled and console.is_terminal
        self._meter = RateMeter()
        self._live: Live | None = None

    def _frame(self) -> RenderableType:
        current = self._sample()
        return render(self._title, current, self._meter.update(current.settled))

    def __enter__(self) -> LiveProgress:
        if self._enabled:
            from rich.live import Live

            self._live = Live(
                self._frame(), console=self._console, auto_refresh=False, transient=False
            )
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.update(self._frame(), refresh=True)
            live.stop()

    async def run(self) -> None:
        """Refresh until cancelled (returns at once when nothing is drawn)."""
        while self._live is not None:
            self._live.update(self._frame(), refresh=True)
            await anyio.sleep(_REFRESH)
