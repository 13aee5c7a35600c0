"""The import run: records in, one outcome per line out, a checkpoint that only moves
past settled lines.

Flow (one event loop, one client)::

    reader thread --chunks--> intake --identify()--> AmplitudeClient --on_outcome--> settle
                                                                                    |
          checkpoint (periodic, atomic) <-- Settlement (lowest unsettled line) <----+

Ctrl-C or SIGTERM stops intake, lets queued operations finish for ``drain_timeout``
(a second signal ends that at once), then closes the client: what is left fails with
"shutdown", stays unsettled, and is sent again by a resumed run. Those that were in
flight may already have been applied: they are counted (``maybe_applied``) and named
in the summary as possible duplicates of the resume.

The checkpoint is saved every ``_SAVE_EVERY`` seconds: after a crash (SIGKILL), a resume
re-sends what had no outcome at the last save, so at most that long of deliveries plus
what was in flight or queued then (docs/cli.md states the window).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio

from ._checkpoint import Checkpoint, Settlement, save_checkpoint
from ._failed_out import FailedOut
from ._progress import LiveProgress, Sample, sample_of
from ._pump import ReadFailed, pump
from ._records import Chunk, Record

if TYPE_CHECKING:
    from rich.console import Console

    from .. import AmplitudeClient, ClientStats, Identify, Outcome
    from ._settings import IdentifyTarget

__all__ = ["ImportOptions", "ImportRun"]

#: Bad lines printed one by one; past this, only counted (the summary has the total).
MAX_SHOWN_BAD_LINES: Final = 20
#: Seconds between checkpoint saves (each an fsync): the replay window after a crash.
_SAVE_EVERY: Final = 0.1
#: Operations queued at once: bounds memory and the checkpoint's pending set.
_QUEUE_MAX: Final = 20_000


@dataclass(frozen=True)
class ImportOptions:
    source: str
    format: str
    shard: str | None
    checkpoint: str | None
    drain_timeout: float
    progress: bool


class ImportRun:
    """One import; :meth:`run` on an event loop, then read the counters."""

    def __init__(
        self,
        options: ImportOptions,
        target: IdentifyTarget,
        chunks: Iterator[Chunk],
        failed_out: FailedOut,
        console: Console,
        total_bytes: int | None,
    ) -> None:
        self.options = options
        self.target = target
        self.counts: Counter[str] = Counter()
        self.settlement = Settlement()
        self.failed_out = failed_out
        self.interrupted: int | None = None
        self.stop_reason: str | None = None
        self.read_all = False
        self.stats: ClientStats | None = None
        self.elapsed = 0.0
        self._chunks = chunks
        self._console = console
        self._total_bytes = total_bytes
        self._position = 0
        self._amp: AmplitudeClient | None = None
        # Made in run(): a cancel scope belongs to a running event loop.
        self._intake_scope: anyio.CancelScope | None = None
        self._drain_scope: anyio.CancelScope | None = None
        self._last_saved: Checkpoint | None = None
        self._shown_bad = 0

    # -- the run ---------------------------------------------------------------------

    def client(self) -> AmplitudeClient:
        """The client for this run (raises ConfigurationError for a bad --server-url)."""
        from .. import AmplitudeClient, ClientConfig

        config = ClientConfig(
            on_outcome=self._on_outcome,
            queue_max=_QUEUE_MAX,
            # The drain below has its own deadline; closing then fails what is left at
            # once, and those lines stay unsettled for the next run.
            shutdown_timeout=0.0,
        )
        return AmplitudeClient(
            self.target.api_key,
            server_zone=self.target.server_zone,
            server_url=self.target.server_url,
            config=config,
        )

    async def run(self, client: AmplitudeClient) -> None:
        started = time.monotonic()
        self._intake_scope = intake_scope = anyio.CancelScope()
        self._drain_scope = drain_scope = anyio.CancelScope()
        chunks = pump(self._chunks)
        progress = LiveProgress(
            self._console, "import", self._sample, enabled=self.options.progress
        )
        try:
            with progress:
                async with client as amp:
                    self._amp = amp
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._watch_signals)
                        tg.start_soon(self._save_periodically)
                        tg.start_soon(progress.run)
                        with intake_scope:
                            await self._intake(amp, chunks)
                        chunks.close()
                        with drain_scope:
                            await amp.flush()
                        tg.cancel_scope.cancel()
                self.stats = client.stats()
        finally:
            chunks.close()
            self.elapsed = time.monotonic() - started

    async def _intake(
        self, amp: AmplitudeClient, chunks: anyio.abc.ObjectReceiveStream[Chunk | ReadFailed]
    ) -> None:
        async for chunk in chunks:
            if isinstance(chunk, ReadFailed):
                self.stop_reason = f"reading the source failed: {chunk}"
                self._console.print(f"[red]error[/red]: {self.stop_reason}")
                return
            counts = self.counts
            counts["blank"] += chunk.blank
            counts["already_done"] += chunk.already_done
            counts["other_shard"] += chunk.other_shard
            for record in chunk.records:
                if self.stop_reason is not None:
                    return
                await self._hand_on(amp, record)
            self._position = chunk.position
            self.settlement.advance(chunk.upto)
        self.read_all = True

    async def _hand_on(self, amp: AmplitudeClient, record: Record) -> None:
        from .. import ValidationError

        op = record.op
        if op is None:
            self._bad_line(record)
            return
        if record.maybe_applied:
            self.counts["spool_maybe_applied"] += 1
        settlement = self.settlement
        # Before identify(): an outcome can arrive inside the call (a refused key).
        settlement.dispatch(op, record.line)
        self.counts["operations"] += 1
        try:
            await amp.identify(op)
        except ValidationError as exc:
            settlement.withdraw(op)
            self.counts["operations"] -= 1
            self._bad_line(Record(record.line, wire=record.wire, error=str(exc)))

    def _bad_line(self, record: Record) -> None:
        assert record.error is not None
        if record.wire is not None:
            # A JSON object Amplitude would refuse: kept in --failed-out to fix and retry.
            self.counts["rejected"] += 1
            self.failed_out.write(record.wire, "validation", record.error, None, record.line)
        else:
            # Not an identification at all: its text goes to --failed-out, to be fixed.
            self.counts["bad"] += 1
            self.failed_out.write_unreadable(record.raw or "", record.error, record.line)
        self.settlement.settle_line(record.line)
        self._show(f"line {record.line}: {record.error}")

    def _show(self, message: str) -> None:
        """Report a line's problem on stderr; past a few, the summary counts them only."""
        self._shown_bad += 1
        if self._shown_bad <= MAX_SHOWN_BAD_LINES:
            # soft_wrap: one problem, one line, however long (a list of names stays whole).
            self._console.print(message, markup=False, soft_wrap=True)
        elif self._shown_bad == MAX_SHOWN_BAD_LINES + 1:
            self._console.print("(more problems are counted in the summary only)")

    # -- outcomes --------------------------------------------------------------------

    def _on_outcome(self, op: Identify, outcome: Outcome) -> None:
        from .. import Failed, FailureReason

        settlement = self.settlement
        if not isinstance(outcome, Failed):
            settlement.settle(op)
            self.counts["delivered"] += 1
            return
        reason = outcome.reason
        if reason in (FailureReason.SHUTDOWN, FailureReason.DROPPED, FailureReason.AUTH):
            # Nothing wrong with the data: leave the line unsettled, so that a run with
            # the same --checkpoint (and a working key) sends it.
            settlement.abandon(op)
            self.counts["not_sent"] += 1
            if outcome.maybe_applied:
                # In flight at the stop: a resume sends it again, maybe a second time.
                self.counts["maybe_applied"] += 1
            if reason is FailureReason.AUTH and self.stop_reason is None:
                self.stop_reason = (
                    f"the API key was not accepted ({outcome.message}); nothing more is sent"
                )
                self._console.print(f"[red]error[/red]: {self.stop_reason}")
                self._stop_intake()
            return
        line = settlement.line_of(op)
        self._show(f"line {line}: failed ({reason.value}): {outcome.message}")
        self.counts[f"failed:{reason.value}"] += 1
        if self.failed_out.path is None:
            # Settled means "final and recorded": without --failed-out this failure is
            # recorded nowhere, so a resumed run tries the line again.
            settlement.abandon(op)
            return
        try:
            self.failed_out.write(op.to_dict(), reason.value, outcome.message, outcome.status, line)
        except OSError as exc:
            # Not recorded anywhere: the line must stay unsettled, and we must stop.
            settlement.abandon(op)
            if self.stop_reason is None:
                self.stop_reason = f"writing --failed-out failed: {exc}"
                self._console.print(f"[red]error[/red]: {self.stop_reason}")
                self._stop_intake()
            return
        settlement.settle(op)

    def _stop_intake(self) -> None:
        if self._intake_scope is not None:
            self._intake_scope.cancel()

    # -- signals, checkpoints, progress ------------------------------------------------

    async def _watch_signals(self) -> None:
        intake, drain = self._intake_scope, self._drain_scope
        assert intake is not None and drain is not None
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.interrupted is None:
                    self.interrupted = int(signum)
                    intake.cancel()
                    drain.deadline = min(
                        drain.deadline, anyio.current_time() + self.options.drain_timeout
                    )
                    # Ctrl-C is only the way to say it at a terminal (SIGINT).
                    again = (
                        "press Ctrl-C again to stop now"
                        if signum == signal.SIGINT
                        else "a second signal stops now"
                    )
                    self._console.print(
                        f"[yellow]{signal.Signals(signum).name}[/yellow]: no more lines are "
                        f"read; delivering what is queued (at most "
                        f"{self.options.drain_timeout:g} s; {again})"
                    )
                else:
                    drain.cancel()

    async def _save_periodically(self) -> None:
        if self.options.checkpoint is None:
            return
        while True:
            await anyio.sleep(_SAVE_EVERY)
            await self._save()

    async def _save(self) -> None:
        checkpoint = self.snapshot()
        if checkpoint == self._last_saved:
            return
        # Failed lines reach the OS before the checkpoint that counts them as settled.
        fd = self.failed_out.flush()
        await anyio.to_thread.run_sync(self._persist, checkpoint, fd)
        self._last_saved = checkpoint

    def _persist(self, checkpoint: Checkpoint, fd: int | None) -> None:
        assert self.options.checkpoint is not None
        if fd is not None:
            os.fsync(fd)
        save_checkpoint(self.options.checkpoint, checkpoint)

    def snapshot(self) -> Checkpoint:
        options = self.options
        return self.settlement.snapshot(
            options.source, options.format, options.shard, complete=self.read_all
        )

    def save_final(self) -> Checkpoint | None:
        """Write the checkpoint once the loop is gone (blocking is fine then)."""
        if self.options.checkpoint is None:
            return None
        checkpoint = self.snapshot()
        self._persist(checkpoint, self.failed_out.flush())
        return checkpoint

    def _sample(self) -> Sample:
        fraction = min(1.0, self._position / self._total_bytes) if self._total_bytes else None
        if self._amp is None:
            return Sample(0, 0, 0, 0, 0, 0, fraction)
        return sample_of(self._amp.stats(), fraction)
