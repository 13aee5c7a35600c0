"""Throughput in a user's loop: the acceptance workloads under this interpreter.

    python -m benchmarks.throughput                 # 50,000 ops per workload, 1 repeat
    python -m benchmarks.throughput --repeats 3 --json out.json
    python -m benchmarks.throughput --prebuilt      # the old figure (a labelled extra)
    python -m benchmarks.throughput --prebuilt --otel          # ... with the OpenTelemetry SDK's MeterProvider
    python -m benchmarks.throughput --prebuilt --otel-traces   # ... and its TracerProvider too

Each Identify is built inside the timed loop (``Identify(user_id=f"user-{i % U}")
.set("plan", "pro").add("logins", 1)``, then ``await amp.identify(op)``), with
``ClientConfig(batch_max_items=1000, flush_interval=0.05, max_in_flight=4)``, against
the lean sink (benchmarks/_sink.py) in another process. Reported: every op a new user;
5 ops per user queued at once, with coalescing on and off; one op per loop turn; the
worst loop stall (1 ms ticker) in a 200k burst with 20,000 and 2,000 users; bytes per
queued op; and the raw aiohttp + msgspec loop and the official SDK in the same run, as
ratios. It is ``python -m benchmarks.compare`` with one interpreter, this one; give that
``--venv`` options to put builds side by side.

``--prebuilt`` runs the previous single-figure benchmark instead: 200,000 operations
built *before* the clock starts and frozen out of the GC, which no user's loop does.
It is kept as a labelled extra: it measures the pipeline without the cost of building
operations and collecting them. With it, ``--otel`` (or ``AMPLITUDE_BENCH_OTEL=1``)
installs the OpenTelemetry SDK's MeterProvider globally, ``--otel-traces`` (or
``AMPLITUDE_BENCH_OTEL=traces``) its TracerProvider as well (in-memory reader and
exporter, so the cost measured is the SDK's recording, not an exporter's I/O).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from typing import Any

import aiohttp

from amplitude_async import AmplitudeClient, ClientConfig, Identify

from ._otel import install_otel, recorded_requests
from .suite import sink_process


def workload(ops: int, users: int) -> list[Identify]:
    """Realistic small updates: a $set and an $add per operation, users round-robin."""
    names = [f"user-{i:07d}" for i in range(users)]
    plans = ("free", "pro", "team", "enterprise")
    return [
        Identify(user_id=names[i % users]).set("plan", plans[i % 4]).add("logins", 1)
        for i in range(ops)
    ]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index]


async def run(
    url: str, ops: list[Identify], config: ClientConfig, yield_every: int
) -> dict[str, Any]:
    latencies: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    async with AmplitudeClient("bench-api-key", server_url=url + "/identify", config=config) as amp:
        started = time.perf_counter()
        cpu_started = time.process_time()
        identify = amp.identify
        for i, op in enumerate(ops):
            t0 = clock()
            await identify(op)
            latencies.append(clock() - t0)
            if i % yield_every == 0:
                await asyncio.sleep(0)
        enqueued = time.perf_counter()
        await amp.flush()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        stats = amp.stats()
    async with aiohttp.ClientSession() as session, session.get(url + "/count") as resp:
        server = await resp.json()
    latencies.sort()
    us = [v / 1000 for v in latencies]
    return {
        "ops": len(ops),
        "delivered": stats.delivered,
        "failed": stats.failed_total,
        "requests": stats.requests,
        "identifications_sent": stats.identifications,
        "server_identifications": server["identifications"],
        "seconds": round(elapsed, 3),
        "enqueue_seconds": round(enqueued - started, 3),
        "ops_per_second": round(stats.delivered / elapsed),
        "client_cpu_seconds_per_1000_ops": round(cpu / len(ops) * 1000, 5),
        "identify_us": {
            "p50": round(percentile(us, 0.50), 2),
            "p99": round(percentile(us, 0.99), 2),
            "p999": round(percentile(us, 0.999), 2),
            "max": round(us[-1], 1) if us else 0.0,
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def prebuilt_main(argv: list[str]) -> dict[str, Any]:
    """The pre-built single-figure benchmark (``--prebuilt``); see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput --prebuilt")
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--yield-every", type=int, default=100, help="producer yields to the loop every N ops"
    )
    parser.add_argument("--no-coalesce", action="store_true")
    parser.add_argument("--json", help="also write the result here")
    otel_env = os.environ.get("AMPLITUDE_BENCH_OTEL", "")
    parser.add_argument(
        "--otel",
        action="store_true",
        default=otel_env not in ("", "0"),
        help="install the OpenTelemetry SDK's MeterProvider (needs opentelemetry-sdk)",
    )
    parser.add_argument(
        "--otel-traces",
        action="store_true",
        default=otel_env == "traces",
        help="with --otel: install the SDK's TracerProvider too",
    )
    args = parser.parse_args(argv)
    args.otel = args.otel or args.otel_traces
    reader = install_otel(traces=args.otel_traces) if args.otel else None
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    config = ClientConfig(coalesce=not args.no_coalesce, queue_max=max(100_000, args.ops))
    ops = workload(args.ops, args.users)
    gc.collect()
    gc.freeze()
    with sink_process() as (url, _info):
        result = asyncio.run(run(url, ops, config, args.yield_every))
    result["users"] = args.users
    result["coalesce"] = not args.no_coalesce
    result["prebuilt"] = True
    result["otel"] = args.otel
    result["otel_traces"] = args.otel_traces
    if reader is not None:
        result["otel_requests_recorded"] = recorded_requests(reader)
    lat = result["identify_us"]
    otel = (" (OpenTelemetry SDK metrics on)" if args.otel else "") + (
        " + traces" if args.otel_traces else ""
    )
    print(
        f"PRE-BUILT operations (not a user's loop): "
        f"{result['ops']:,} ops over {args.users:,} users{otel}: {result['ops_per_second']:,} ops/s delivered "
        f"({result['seconds']} s, {result['requests']} requests, "
        f"{result['identifications_sent']:,} identifications)\n"
        f"identify(): p50 {lat['p50']} us, p99 {lat['p99']} us, p99.9 {lat['p999']} us, max {lat['max']} us\n"
        f"client CPU {result['client_cpu_seconds_per_1000_ops'] * 1000:.1f} ms per 1,000 ops; "
        f"peak RSS {result['peak_rss_mb']} MB"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if "--prebuilt" in args:
        args.remove("--prebuilt")
        prebuilt_main(args)
        return 0
    from . import compare

    if "--repeats" not in args and not any(a.startswith("--repeats=") for a in args):
        args = ["--repeats", "1", *args]
    return compare.main(["--venv", f"this={sys.executable}", *args])


if __name__ == "__main__":
    sys.exit(main())
