"""What users do, measured in one child process: the workloads of ``benchmarks.throughput``
and ``benchmarks.compare``.

    python -P -m benchmarks.workloads '{"workload": "new_users", "base_url": ..., ...}'

prints one line, ``RESULT {json}``. Only amplitude-async's public API is used, so the
same file measures any installed version of the package (an old commit's venv, the pure
build, the compiled build). The parent runs it with ``-P`` from a directory that holds
nothing but a link to ``benchmarks/``, so the source tree never shadows the package
installed in the interpreter under test; ``build`` in the result says which files were
imported and which of them are compiled.

Every workload builds each Identify inside the timed loop, as a user's code does::

    op = Identify(user_id=f"user-{i % users}").set("plan", "pro").add("logins", 1)
    await amp.identify(op)

- ``new_users``: every operation a new user (``users == ops``);
- ``per_user_5``: 5 operations per user (``users == ops / 5``, round-robin), with
  ``coalesce`` on or off;
- ``service``: one operation per loop turn (``await asyncio.sleep(0)`` after each), as a
  web service produces them (``users == ops / 5``);
- ``stall``: a burst with the producer yielding every ``yield_every`` (100) operations
  and a 1 ms ticker on the loop; its worst lateness is the worst loop stall. Full
  collections of CPython's GC are recorded too (``gc``), with the worst stall that holds
  none (``loop_stall.max_outside_full_gc_ms``); with ``gc_freeze`` the process's
  objects are frozen first (``gc.freeze()``, as a service does after start-up);

In ``new_users`` and ``per_user_5`` the producer is the loop above and nothing else: it
never yields on its own, so the operations are queued at once (the default
``queue_max`` of 100,000 holds all 50,000) unless the client itself hands the loop a
turn; that is what makes ``per_user_5`` coalescing-heavy (``identifications_per_op``
says how much was merged).
- ``memory``: operations queued while the server never answers; resident-set growth per
  queued operation (the Identify included).

Any workload takes ``"otel": "metrics"`` or ``"traces"`` in its params (``compare
--otel``): the OpenTelemetry SDK's providers are installed first, and the result says how
many requests its metrics recorded.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.machinery
import importlib.metadata
import json
import logging
import sys
import time
from typing import Any

from ._common import (
    CLIENT_CPU,
    GcWatch,
    Ticker,
    control,
    current_rss,
    peak_rss,
    pin,
    server_load,
)

API_KEY = "bench-api-key"

#: The acceptance setup (issue 12): 50,000 operations, batches of 1,000, 50 ms flush
#: interval, 4 requests in flight.
ACCEPTANCE: dict[str, Any] = {"batch_max_items": 1000, "flush_interval": 0.05, "max_in_flight": 4}

#: Modules the compiled build may compile; ``build.compiled`` lists those that are.
CANDIDATE_MODULES = (
    "_accumulator",
    "_backoff",
    "_batcher",
    "_coalesce",
    "_encode",
    "_identify",
    "_identify_checks",
    "_identify_wire",
    "_intake",
    "_lanes",
    "_ledger",
    "_limits",
    "_outcome",
    "_plain",
    "_request",
    "_rules",
    "_sender",
    "_size_floor",
    "_stats",
    "_throttle",
)


def build_info() -> dict[str, Any]:
    """Which amplitude_async this process imported, and which of its modules are compiled."""
    import amplitude_async

    compiled = []
    for name in CANDIDATE_MODULES:
        try:
            module = importlib.import_module(f"amplitude_async.{name}")
        except ImportError:
            continue
        path = getattr(module, "__file__", "") or ""
        if path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            compiled.append(name)
    try:
        version = importlib.metadata.version("amplitude-async")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {
        "package_file": amplitude_async.__file__,
        "version": version,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "compiled": compiled,
    }


def _client(base_url: str, path: str, **config: Any) -> Any:
    from amplitude_async import AmplitudeClient, ClientConfig

    return AmplitudeClient(API_KEY, server_url=base_url + path, config=ClientConfig(**config))


async def _produce(
    amp: Any, ops: int, users: int, yield_every: int, ticker: Ticker | None = None
) -> dict[str, Any]:
    from amplitude_async import Identify

    watch = GcWatch()
    if ticker is not None:
        ticker.start()
        watch.start()
        await asyncio.sleep(0)
    identify = amp.identify
    started = time.perf_counter()
    cpu_started = time.process_time()
    if yield_every:
        for i in range(ops):
            await identify(
                Identify(user_id=f"user-{i % users}").set("plan", "pro").add("logins", 1)
            )
            if i % yield_every == 0:
                await asyncio.sleep(0)
    else:
        # The user's loop as written: the producer never yields on its own, so it runs
        # until identify() waits (a full queue, or a client that hands the loop a turn).
        for i in range(ops):
            await identify(
                Identify(user_id=f"user-{i % users}").set("plan", "pro").add("logins", 1)
            )
    enqueued = time.perf_counter()
    await amp.flush()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    result: dict[str, Any] = {}
    if ticker is not None:
        await ticker.stop()
        watch.stop()
        result["loop_stall"] = ticker.result(watch)
        result["gc"] = watch.result()
    stats = amp.stats()
    result.update(
        {
            "delivered": stats.delivered,
            "failed": stats.failed_total,
            "requests": stats.requests,
            "identifications_per_op": round(stats.identifications / ops, 3),
            "seconds": round(elapsed, 3),
            "enqueue_seconds": round(enqueued - started, 3),
            "ops_per_second": round(stats.delivered / elapsed),
            "us_per_op_cpu": round(cpu / ops * 1e6, 2),
            "client_busy": round(cpu / elapsed, 3),
        }
    )
    return result


def throughput(
    base_url: str,
    ops: int,
    users: int,
    *,
    coalesce: bool = True,
    yield_every: int = 0,
    ticker: bool = False,
    config: dict[str, Any] | None = None,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    """``ops`` operations over ``users`` users, built in the loop, delivered; ops/s.

    ``gc_freeze``: once the client is open, ``gc.freeze()`` what the process holds (as a
    service does after its start-up), so that full collections walk only what was
    made since, and ``gc.unfreeze()`` after the run.
    """
    settings = dict(ACCEPTANCE if config is None else config)
    settings["coalesce"] = coalesce

    async def main() -> dict[str, Any]:
        async with _client(base_url, "/identify", **settings) as amp:
            if gc_freeze:
                gc.collect()
                gc.freeze()
            try:
                return await _produce(amp, ops, users, yield_every, Ticker() if ticker else None)
            finally:
                if gc_freeze:
                    gc.unfreeze()

    gc.collect()
    reset = control(base_url, "/_reset", {})
    result = asyncio.run(main())
    server = control(base_url, "/count")
    result.update(server_load(reset, server, result["seconds"]))
    result.update(
        {
            "ops": ops,
            "users": users,
            "coalesce": coalesce,
            "yield_every": yield_every,
            "gc_freeze": gc_freeze,
            "server_identifications": server["identifications"],
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
        }
    )
    if result["delivered"] != ops or result["failed"]:
        raise RuntimeError(f"delivered {result['delivered']} of {ops}, {result['failed']} failed")
    return result


def memory(base_url: str, ops: int, users: int) -> dict[str, Any]:
    """Queue ``ops`` operations while the server never answers; RSS growth per operation.

    The user ids exist before the baseline (they are the application's data). Each
    Identify is built in the loop and only the client keeps it.
    """
    from amplitude_async import Identify

    names = [f"user-{i}" for i in range(users)]

    async def main() -> dict[str, Any]:
        async with _client(
            base_url,
            "/hang/identify",
            **ACCEPTANCE,
            queue_max=ops + 10_000,
            request_timeout=3600.0,
            shutdown_timeout=0.0,
            retry_deadline=3600.0,
        ) as amp:
            # Warm up: the first requests go out (and hang); lanes and pools exist.
            for i in range(5000):
                await amp.identify(Identify(user_id=names[i % users]).set("plan", "pro"))
            await asyncio.sleep(0.2)
            gc.collect()
            before = current_rss()
            identify = amp.identify
            for i in range(ops):
                await identify(
                    Identify(user_id=names[i % users]).set("plan", "pro").add("logins", 1)
                )
                if i % 1000 == 0:
                    await asyncio.sleep(0)
            gc.collect()
            after = current_rss()
            queued = amp.stats().queued
        return {"bytes_per_op": round((after - before) / ops, 1), "queued": queued}

    result = asyncio.run(main())
    result.update({"ops": ops, "users": users, "peak_rss_mb": round(peak_rss() / 2**20, 1)})
    return result


def run(spec: dict[str, Any]) -> dict[str, Any]:
    params = dict(spec.get("params", {}))
    url = spec["base_url"]
    name = spec["workload"]
    ops = int(params.pop("ops"))
    # "metrics" or "traces": the OpenTelemetry SDK's providers installed globally, so the
    # client records its instruments (and spans) as a service with a collector would.
    otel = params.pop("otel", None)
    reader = None
    if otel:
        from ._otel import install_otel

        reader = install_otel(traces=otel == "traces")
    if name == "new_users":
        result = throughput(url, ops, ops, **params)
    elif name == "per_user_5":
        result = throughput(url, ops, max(1, ops // 5), **params)
    elif name == "service":
        result = throughput(url, ops, max(1, ops // 5), yield_every=1, **params)
    elif name == "stall":
        users = int(params.pop("users"))
        params.setdefault("yield_every", 100)
        result = throughput(url, ops, users, ticker=True, **params)
    elif name == "memory":
        result = memory(url, ops, int(params.pop("users")))
    elif name == "raw":
        from .peers import raw_user_loop

        result = raw_user_loop(url, ops, max(1, ops // 5), **params)
    elif name == "official":
        from .peers import official_user_loop

        result = official_user_loop(url, ops, max(1, ops // 5), **params)
    else:
        raise SystemExit(f"unknown workload {name!r}")
    result["workload"] = name
    result["build"] = build_info()
    if otel:
        from ._otel import recorded_requests

        result["otel"] = otel
        result["otel_requests_recorded"] = recorded_requests(reader)
    return result


def main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    logger = logging.getLogger("amplitude_async")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    pinned = pin(CLIENT_CPU) if spec.get("pin", True) else False
    result = run(spec)
    result["client_pinned"] = pinned
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
