"""Small helpers shared by the benchmark suite: pinning, memory, percentiles, the loop
ticker, and the sink's control endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The client (and every contender) runs here; the server gets the other CPU.
CLIENT_CPU = 0
SERVER_CPU = 1


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1


def pin(cpu: int) -> bool:
    """Pin this process (and threads it starts later) to ``cpu``; True if it worked."""
    if not can_pin():
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return os.sched_getaffinity(0) == {cpu}


def affinity() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def current_rss() -> int:
    """Resident set size now, in bytes (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss()


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentiles_us(latencies_ns: list[int]) -> dict[str, float]:
    """p50 / p99 / p99.9 / max of per-call latencies, in microseconds."""
    if not latencies_ns:
        return {"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0}
    values = sorted(latencies_ns)
    last = len(values) - 1

    def at(q: float) -> float:
        return round(values[min(last, int(q * len(values)))] / 1000, 2)

    return {"p50": at(0.50), "p99": at(0.99), "p999": at(0.999), "max": round(values[-1] / 1000, 1)}


def summary(values: list[float]) -> dict[str, float]:
    """Median with min and max (what the suite reports for every repeated figure)."""
    if not values:
        return {"median": 0.0, "min": 0.0, "max": 0.0}
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
    }


class Ticker:
    """A task that asks to wake every ``period`` seconds and records how late it woke.

    Its worst lateness is the event loop's worst stall during the run: anything that
    holds the loop (the producer, the SDK's batching and response handling) delays it.

    On a shared host the OS may also deschedule the whole process for a few ms, which a
    wall clock cannot tell from a stall. So each gap is also measured in this process's
    CPU time: ``max_busy_ms`` is the longest the process itself kept running (holding
    the loop, or with the GIL, its threads) between two wake-ups, minus the period. On
    a quiet host the two agree; when they do not, the difference was the host's.
    """

    def __init__(self, period: float = 0.001) -> None:
        self.period = period
        self.lateness: list[float] = []
        self.busy: list[float] = []
        #: (start, end, lateness) of every tick more than 1 ms late, to tell stalls that
        #: contain a full collection (GcWatch) from the others.
        self.late_spans: list[tuple[float, float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        clock = time.perf_counter
        cpu = time.process_time
        period = self.period
        late = self.lateness.append
        busy = self.busy.append
        while True:
            started, cpu_started = clock(), cpu()
            await asyncio.sleep(period)
            ended = clock()
            wall = ended - started
            late(wall - period)
            busy(max(0.0, min(wall, cpu() - cpu_started) - period))
            if wall - period > 0.001:
                self.late_spans.append((started, ended, wall - period))

    def result(self, gc: GcWatch | None = None) -> dict[str, float]:
        values = sorted(self.lateness)
        if not values:
            return {"ticks": 0, "max_ms": 0.0, "p99_ms": 0.0, "over_5ms": 0, "max_busy_ms": 0.0}
        busy = sorted(self.busy)
        extra: dict[str, float] = {}
        if gc is not None:
            # The worst stall that holds no full collection: what the SDK's own steps
            # (and the producer) cost, apart from CPython collecting the whole heap.
            outside = [
                late
                for start, end, late in self.late_spans
                if not any(gc_start < end and gc_end > start for gc_start, gc_end in gc.full)
            ]
            extra["max_outside_full_gc_ms"] = round(max(outside, default=0.0) * 1000, 3)
        return extra | {
            "ticks": len(values),
            "max_ms": round(values[-1] * 1000, 3),
            "p99_ms": round(values[min(len(values) - 1, int(0.99 * len(values)))] * 1000, 3),
            "over_5ms": sum(1 for v in values if v > 0.005),
            "max_busy_ms": round(busy[-1] * 1000, 3),
            "p99_busy_ms": round(busy[min(len(busy) - 1, int(0.99 * len(busy)))] * 1000, 3),
            "busy_over_5ms": sum(1 for v in busy if v > 0.005),
        }


class GcWatch:
    """Records when CPython collects its oldest generation (a full collection walks every
    object the process tracks: the libraries it imported included, 34,000 objects or
    more for aiohttp, anyio and msgspec, 7-13 ms on the 2-core benchmark machine)."""

    def __init__(self) -> None:
        self.full: list[tuple[float, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.full.append((self._started, time.perf_counter()))

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def result(self) -> dict[str, float]:
        pauses = [end - start for start, end in self.full]
        return {
            "full_collections": len(pauses),
            "full_collection_max_ms": round(max(pauses, default=0.0) * 1000, 3),
            "full_collection_total_ms": round(sum(pauses) * 1000, 3),
        }


def control(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call one of the sink's endpoints (GET without a body, POST with one); JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def server_load(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, float]:
    """The sink's CPU use between two of its answers (``/_reset`` then ``/count``): how
    busy the server was. Near 1.0 the server, not the client, set the pace."""
    cpu = float(after["cpu_seconds"]) - float(before["cpu_seconds"])
    return {
        "server_cpu_seconds": round(cpu, 3),
        "server_busy": round(cpu / seconds, 3) if seconds else 0.0,
    }


def calibrate(rounds: int = 5) -> dict[str, float]:
    """Host speed: the best of ``rounds`` runs of a fixed pure-Python loop (ms).

    Lower is faster. Recorded at the start and the end of a suite run so a reader can
    tell a slow host (or a host that got busier during the run) from a slow client.
    """
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        data: dict[int, int] = {}
        for i in range(300_000):
            total += i * i % 7
            data[i & 1023] = total
        times.append(time.perf_counter() - started)
    return {
        "best_ms": round(min(times) * 1000, 2),
        "median_ms": round(statistics.median(times) * 1000, 2),
    }


def child_result(
    cmd: list[str], *, cwd: Any, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one measurement in a child process that prints ``RESULT {json}``; that result
    with its wall time, or ``{"error": ...}`` with the end of its output."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            result["wall_seconds"] = round(time.perf_counter() - started, 2)
            return result
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-8:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


@contextlib.contextmanager
def isolated_benchmarks() -> Iterator[str]:
    """A directory holding only a link to benchmarks/. A child started there with
    ``python -P`` and ``PYTHONPATH`` set to it imports benchmarks from this tree but
    amplitude_async from the interpreter's own install, never from the source tree."""
    with tempfile.TemporaryDirectory(prefix="amp-bench-") as tmp:
        os.symlink(Path(__file__).resolve().parent, Path(tmp) / "benchmarks")
        yield tmp


def isolated_env(where: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=where)
