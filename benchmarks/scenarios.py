"""The suite's measurements, one per child process.

``python -m benchmarks.scenarios '{"scenario": ..., "contender": ..., "base_url": ...}'``
pins itself to the client CPU, runs one measurement against the sink at ``base_url`` and
prints one line, ``RESULT {json}``. benchmarks/suite.py starts one such process per run,
so every run starts from a fresh interpreter (its own peak RSS, no threads or garbage
left by the previous contender).

Every run builds its workload first and then ``gc.freeze()``-s it (see
benchmarks/throughput.py): the harness's million pre-built objects must not be charged
to the SDK's garbage collections.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from amplitude_async import AmplitudeClient, ClientConfig, Identify, Outcome

from . import peers, workloads
from ._common import (
    CLIENT_CPU,
    Ticker,
    affinity,
    control,
    current_rss,
    peak_rss,
    pin,
    server_load,
)
from ._common import percentiles_us as _percentiles
from .throughput import workload

API_KEY = peers.API_KEY
PLANS = peers.PLANS


def quiet_sdk_logs() -> None:
    # The client logs every 429 and retry at WARNING. Records are still created (their
    # cost stays in the measurement) but go nowhere instead of to stderr.
    logger = logging.getLogger("amplitude_async")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


# -- 1 and 2: throughput and caller cost -------------------------------------------------


def ours(
    base_url: str,
    ops: int,
    users: int,
    *,
    coalesce: bool = True,
    timed_calls: bool = False,
    yield_every: int = 100,
    prebuilt: bool = False,
) -> dict[str, Any]:
    """``ops`` operations over ``users`` users through AmplitudeClient, delivered.

    Without ``timed_calls``: throughput (nothing but the calls in the producer loop).
    With it: every ``await identify(op)`` timed and a :class:`Ticker` on the loop.
    ``queue_max`` is at least ``ops``, so identify() never waits for room: the latency is
    the call's own cost, not backpressure.

    Each Identify is built inside the timed loop, as users do; with ``prebuilt`` (a
    labelled extra) they are built before the clock starts and frozen out of the GC.
    """
    work: list[Identify] | _InLoop = workload(ops, users) if prebuilt else _InLoop(ops, users)
    gc.collect()
    gc.freeze()
    reset = control(base_url, "/_reset", {})
    config = ClientConfig(coalesce=coalesce, queue_max=max(100_000, ops))
    result = asyncio.run(_ours(base_url, work, config, timed_calls, yield_every))
    server = control(base_url, "/count")
    result.update(server_load(reset, server, result["seconds"]))
    result.update(
        {
            "ops": ops,
            "users": users,
            "coalesce": coalesce,
            "server_identifications": server["identifications"],
            "ops_per_second": round(result["delivered"] / result["seconds"]),
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
        }
    )
    return result


class _InLoop:
    """The throughput workload, each Identify built when the loop asks for it."""

    def __init__(self, ops: int, users: int) -> None:
        self.ops = ops
        self.names = [f"user-{i:07d}" for i in range(users)]

    def __len__(self) -> int:
        return self.ops

    def __iter__(self) -> Iterator[Identify]:
        names, users = self.names, len(self.names)
        for i in range(self.ops):
            yield Identify(user_id=names[i % users]).set("plan", PLANS[i % 4]).add("logins", 1)


async def _ours(
    base_url: str,
    work: list[Identify] | _InLoop,
    config: ClientConfig,
    timed_calls: bool,
    yield_every: int,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    ticker = Ticker() if timed_calls else None
    latencies: list[int] = []
    async with AmplitudeClient(API_KEY, server_url=base_url + "/identify", config=config) as amp:
        if ticker is not None:
            ticker.start()
            await asyncio.sleep(0)
        identify = amp.identify
        started = time.perf_counter()
        cpu_started = time.process_time()
        if timed_calls:
            record = latencies.append
            clock = time.perf_counter_ns
            for i, op in enumerate(work):
                t0 = clock()
                await identify(op)
                record(clock() - t0)
                if i % yield_every == 0:
                    await asyncio.sleep(0)
        else:
            for i, op in enumerate(work):
                await identify(op)
                if i % yield_every == 0:
                    await asyncio.sleep(0)
        enqueued = time.perf_counter()
        await amp.flush()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if ticker is not None:
            await ticker.stop()
            result["loop_stall"] = ticker.result()
            result["identify_us"] = _percentiles(latencies)
        stats = amp.stats()
    result.update(
        {
            "delivered": stats.delivered,
            "failed": stats.failed_total,
            "requests": stats.requests,
            "identifications_sent": stats.identifications,
            "seconds": round(elapsed, 3),
            "enqueue_seconds": round(enqueued - started, 3),
            "cpu_ms_per_1000_ops": round(cpu / len(work) * 1e6, 3),
            # The process's CPU over wall time: about 1 for a CPU-bound client on a
            # quiet host; well under 1 when other work took its CPU.
            "client_busy": round(cpu / elapsed, 3),
        }
    )
    return result


# -- 3: memory ---------------------------------------------------------------------------


def _op_bytes(op: Identify) -> int:
    """Bytes of one Identify as built here (the object and its flat operation tuple)."""
    return sys.getsizeof(op) + sys.getsizeof(op._ops)


def memory(base_url: str, ops: int, users: int) -> dict[str, Any]:
    """Queue ``ops`` operations while the server never answers; RSS growth per operation.

    The user ids exist before the baseline (they are the application's data); each
    Identify is built in the loop and only the client keeps it, as in a service that
    fires and forgets. ``bytes_per_op`` is therefore everything a queued operation costs:
    the Identify itself plus the client's receipt and lane bookkeeping;
    ``identify_object_bytes`` says how much of it is the Identify.
    """
    names = [f"user-{i:07d}" for i in range(users)]
    gc.collect()
    gc.freeze()
    result = asyncio.run(_memory(base_url, names, ops))
    result.update({"ops": ops, "users": users, "peak_rss_mb": round(peak_rss() / 2**20, 1)})
    return result


async def _memory(base_url: str, names: list[str], ops: int) -> dict[str, Any]:
    users = len(names)
    config = ClientConfig(
        queue_max=ops + 10_000, request_timeout=3600.0, shutdown_timeout=0.0, retry_deadline=3600.0
    )
    async with AmplitudeClient(
        API_KEY, server_url=base_url + "/hang/identify", config=config
    ) as amp:
        # Warm up: the first requests go out (and hang), lanes and pools exist.
        for i in range(5000):
            await amp.identify(Identify(user_id=names[i % users]).set("plan", "pro").add("n", 1))
        await asyncio.sleep(0.2)
        gc.collect()
        before = current_rss()
        started = time.perf_counter()
        identify = amp.identify
        for i in range(ops):
            await identify(
                Identify(user_id=names[i % users]).set("plan", PLANS[i & 3]).add("logins", 1)
            )
            if i % 1000 == 0:
                await asyncio.sleep(0)
        enqueue_seconds = time.perf_counter() - started
        gc.collect()
        after = current_rss()
        stats = amp.stats()
        sample = _op_bytes(Identify(user_id=names[0]).set("plan", PLANS[0]).add("logins", 1))
        hanging = control(base_url, "/count")["hanging"]
        closing = time.perf_counter()
    close_seconds = time.perf_counter() - closing
    per_op = (after - before) / ops
    return {
        "queued": stats.queued,
        "in_flight_requests": stats.in_flight,
        "server_hanging_requests": hanging,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "bytes_per_op": round(per_op, 1),
        "identify_object_bytes": sample,
        "client_bytes_per_op": round(per_op - sample, 1),
        "enqueue_seconds": round(enqueue_seconds, 3),
        "close_seconds": round(close_seconds, 3),
    }


# -- 4: head-of-line ---------------------------------------------------------------------


def hol_workload(
    ops: int, users: int, hot_share: float, hot_weight: int, seed: int = 6
) -> tuple[list[Identify], set[str], dict[str, int]]:
    """Operations where ``hot_share`` of the users each get ``hot_weight`` times the
    operations of a cold user, interleaved at random (fixed seed). Each operation appends
    its user's next sequence number, so the server can check order and completeness."""
    names = [f"user-{i:07d}" for i in range(users)]
    hot_count = max(1, round(users * hot_share))
    hot = set(names[:hot_count])
    pattern = [n for n in names[:hot_count] for _ in range(hot_weight)] + names[hot_count:]
    rng = random.Random(seed)
    sequence: list[str] = []
    while len(sequence) < ops:
        rng.shuffle(pattern)
        sequence.extend(pattern)
    del sequence[ops:]
    counts: dict[str, int] = {}
    work = []
    for i, name in enumerate(sequence):
        k = counts.get(name, 0)
        counts[name] = k + 1
        work.append(Identify(user_id=name).set("plan", PLANS[i & 3]).append("seq", k))
    return work, hot, counts


def head_of_line(
    base_url: str,
    ops: int,
    users: int,
    *,
    throttled: bool,
    hot_share: float = 0.05,
    hot_weight: int = 10,
    hold: float | None = None,
) -> dict[str, Any]:
    """Delivered rate of the cold users, with the hot ones throttled (429) or not.

    With ``throttled`` the sink answers 429 naming the hot users to every request that
    carries one of them until all cold operations are delivered; then it lets them
    through and the client's flush() delivers the rest. ``hold`` is the client's
    ``throttle_hold`` (None: the default, Amplitude's 15 s: each hot user is refused
    about once during the run; 0.5 s: its lane comes back, with its whole backlog, and is
    refused again every half second). The sink checks every user's sequence.
    """
    work, hot, counts = hol_workload(ops, users, hot_share, hot_weight)
    gc.collect()
    gc.freeze()
    reset = control(base_url, "/_reset", {"track_seq": True})
    if throttled:
        control(base_url, "/_throttle", {"users": sorted(hot)})
    result = asyncio.run(_hol(base_url, work, hot, hold, throttled))
    seq = control(base_url, "/_seq")
    server = control(base_url, "/count")
    result.update(server_load(reset, server, result["all_seconds"]))
    seen = seq["next"]
    wrong = [u for u, n in counts.items() if seen.get(u) != n]
    result.update(
        {
            "ops": ops,
            "users": users,
            "hot_users": len(hot),
            "hot_ops": sum(counts[u] for u in hot),
            "throttled": throttled,
            "throttle_hold": hold if hold is not None else ClientConfig().throttle_hold,
            "server_429s": server["throttled_requests"],
            "sequence_values": seq["values"],
            "sequence_violations": seq["violations"],
            "users_out_of_sequence": len(wrong),
            "hot_users_out_of_sequence": sum(1 for u in wrong if u in hot),
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
        }
    )
    return result


async def _hol(
    base_url: str, work: list[Identify], hot: set[str], hold: float | None, throttled: bool
) -> dict[str, Any]:
    cold_total = sum(1 for op in work if op.user_id not in hot)
    cold_done = asyncio.Event()
    cold_delivered = 0
    cold_finished = 0.0

    def on_outcome(op: Identify, outcome: Outcome) -> None:
        nonlocal cold_delivered, cold_finished
        if op.user_id not in hot and outcome.ok:
            cold_delivered += 1
            if cold_delivered == cold_total:
                cold_finished = time.perf_counter()
                cold_done.set()

    config = ClientConfig(queue_max=len(work) + 1000, on_outcome=on_outcome)
    if hold is not None:
        config = config.replace(throttle_hold=hold)
    async with AmplitudeClient(API_KEY, server_url=base_url + "/identify", config=config) as amp:
        started = time.perf_counter()
        cpu_started = time.process_time()
        for i, op in enumerate(work):
            await amp.identify(op)
            if i % 100 == 0:
                await asyncio.sleep(0)
        await asyncio.wait_for(cold_done.wait(), 300)
        cold_cpu = time.process_time() - cpu_started
        if throttled:
            await asyncio.to_thread(control, base_url, "/_unthrottle", {})
        await amp.flush()
        finished = time.perf_counter()
        stats = amp.stats()
    cold_seconds = cold_finished - started
    return {
        "cold_ops": cold_total,
        "cold_seconds": round(cold_seconds, 3),
        "cold_ops_per_second": round(cold_total / cold_seconds),
        # CPU per operation enqueued, until the last cold one was delivered.
        "cpu_ms_per_1000_ops": round(cold_cpu / len(work) * 1e6, 3),
        "client_busy": round(cold_cpu / cold_seconds, 3),
        "all_seconds": round(finished - started, 3),
        "delivered": stats.delivered,
        "failed": stats.failed_total,
        "requests": stats.requests,
        "throttle_responses": stats.throttle_responses,
        "retried": stats.retried,
    }


# -- the child entry point -----------------------------------------------------------------

Runner = Callable[[str, dict[str, Any]], dict[str, Any]]

RUNNERS: dict[tuple[str, str], Runner] = {
    ("throughput", "amplitude_async"): lambda url, p: ours(url, p["ops"], p["users"]),
    ("throughput", "amplitude_async_no_coalesce"): lambda url, p: ours(
        url, p["ops"], p["users"], coalesce=False
    ),
    ("throughput", "amplitude_async_prebuilt"): lambda url, p: ours(
        url, p["ops"], p["users"], prebuilt=True
    ),
    # The acceptance setup (benchmarks/workloads.py): the Identify built in the loop.
    ("user_workloads", "new_users"): lambda url, p: workloads.throughput(url, p["ops"], p["ops"]),
    ("user_workloads", "per_user_5"): lambda url, p: workloads.throughput(
        url, p["ops"], p["ops"] // 5
    ),
    ("user_workloads", "per_user_5_no_coalesce"): lambda url, p: workloads.throughput(
        url, p["ops"], p["ops"] // 5, coalesce=False
    ),
    ("user_workloads", "service"): lambda url, p: workloads.throughput(
        url, p["ops"], p["ops"] // 5, yield_every=1
    ),
    ("user_workloads", "raw_loop"): lambda url, p: peers.raw_user_loop(
        url, p["ops"], p["ops"] // 5
    ),
    ("user_workloads", "official_sdk"): lambda url, p: peers.official_user_loop(
        url, p["ops"], p["ops"] // 5
    ),
    ("stall", "users_20k"): lambda url, p: workloads.throughput(
        url, p["ops"], p["users_many"], ticker=True, yield_every=100
    ),
    ("stall", "users_2k"): lambda url, p: workloads.throughput(
        url, p["ops"], p["users_few"], ticker=True, yield_every=100
    ),
    ("throughput", "raw_loop"): lambda url, p: peers.raw_loop(
        url, p["ops"], p["users"], rounds=p["rounds"]
    ),
    ("throughput", "raw_http"): lambda url, p: peers.raw_loop(
        url, p["ops"], p["users"], rounds=p["rounds"], pre_encoded=True
    ),
    ("throughput", "official_sdk"): lambda url, p: peers.official_sdk(url, p["ops"], p["users"]),
    ("caller_cost", "amplitude_async"): lambda url, p: ours(
        url, p["ops"], p["users"], timed_calls=True, yield_every=p["yield_every"]
    ),
    ("caller_cost", "official_sdk"): lambda url, p: peers.official_sdk(
        url, p["ops"], p["users"], timed_calls=True, yield_every=p["yield_every"]
    ),
    ("memory", "amplitude_async"): lambda url, p: memory(url, p["ops"], p["users"]),
    ("head_of_line", "baseline"): lambda url, p: head_of_line(
        url, p["ops"], p["users"], throttled=False, hold=p["hold"]
    ),
    ("head_of_line", "throttled"): lambda url, p: head_of_line(
        url, p["ops"], p["users"], throttled=True, hold=p["hold"]
    ),
    ("head_of_line", "throttled_short_hold"): lambda url, p: head_of_line(
        url, p["ops"], p["users"], throttled=True, hold=p["short_hold"]
    ),
}


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    pinned = pin(CLIENT_CPU) if spec.get("pin", True) else False
    quiet_sdk_logs()
    runner = RUNNERS[(spec["scenario"], spec["contender"])]
    result = runner(spec["base_url"], spec["params"])
    result["client_pinned"] = pinned
    result["client_cpus"] = affinity()
    result["build"] = workloads.build_info()
    return result


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    result = run_one(json.loads(args[0]))
    print("RESULT " + json.dumps(result), flush=True)
    # Skip interpreter teardown: the official SDK's consumer thread would keep the
    # process alive for its 10 s flush interval, and freeing a million queued objects
    # one by one measures nothing.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
