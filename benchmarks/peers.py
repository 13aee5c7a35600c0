"""The contenders amplitude-async is measured against, on the same server in the same run.

- :func:`official_sdk`: the official ``amplitude-analytics`` SDK's ``identify()`` with its
  default configuration (200 events a batch, 16 sender threads), ``server_url`` pointed at
  the sink's ``/2/httpapi`` (it never uses ``/identify``). ``shutdown()`` flushes and
  joins its senders; delivered operations are counted by the sink.
- :func:`raw_loop`: the ceiling for one process: a bare aiohttp + msgspec loop posting
  pre-built batches of identification dicts to ``/identify``, ``in_flight`` at a time over
  one keep-alive session. With ``pre_encoded=False`` (the default, and the figure the
  suite compares against) each batch is encoded in the timed loop with the same encoder
  as the client (msgspec JSON, then the client's form escaping); with
  ``pre_encoded=True`` the bodies are built beforehand, which leaves only HTTP.

Both take pre-built operations, like the amplitude-async runs, so the timed part is the
SDK's (or the loop's) own work.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import logging
import time
from typing import Any

import aiohttp
import msgspec

from amplitude_async._encode import form_escape

from ._common import Ticker, control, peak_rss, percentiles_us, server_load

API_KEY = "bench-api-key"
PLANS = ("free", "pro", "team", "enterprise")


def official_available() -> bool:
    try:
        importlib.metadata.version("amplitude-analytics")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def official_sdk(
    base_url: str,
    ops: int,
    users: int,
    *,
    timed_calls: bool = False,
    yield_every: int = 10,
) -> dict[str, Any]:
    """Run ``ops`` identify calls through the official SDK; see the module docstring.

    With ``timed_calls`` the calls are made from a coroutine on an asyncio loop (as in a
    FastAPI handler), each one timed, with a :class:`Ticker` on the same loop: the
    caller-cost scenario. Otherwise a plain loop: the throughput scenario.
    """
    from amplitude import Amplitude, Config, EventOptions
    from amplitude import Identify as OfficialIdentify

    logging.getLogger("amplitude").setLevel(logging.CRITICAL)
    names = [f"user-{i:07d}" for i in range(users)]
    work = [
        (
            OfficialIdentify().set("plan", PLANS[i % 4]).add("logins", 1),
            EventOptions(user_id=names[i % users]),
        )
        for i in range(ops)
    ]
    gc.collect()
    gc.freeze()
    reset = control(base_url, "/_reset", {})
    client = Amplitude(API_KEY, Config(server_url=base_url + "/2/httpapi"))
    result: dict[str, Any] = {}
    started = time.perf_counter()
    cpu_started = time.process_time()
    if timed_calls:
        latencies, stall = asyncio.run(_timed_official(client, work, yield_every))
        result["identify_us"] = percentiles_us(latencies)
        result["loop_stall"] = stall
    else:
        identify = client.identify
        for identify_obj, options in work:
            identify(identify_obj, options)
    enqueued = time.perf_counter()
    client.shutdown()  # flushes what is buffered and joins the sender pool
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    server = control(base_url, "/count")
    delivered = server["identifications"]
    result.update(server_load(reset, server, elapsed))
    result.update(
        {
            "ops": ops,
            "delivered": delivered,
            "seconds": round(elapsed, 3),
            "enqueue_seconds": round(enqueued - started, 3),
            "ops_per_second": round(delivered / elapsed),
            "cpu_ms_per_1000_ops": round(cpu / ops * 1e6, 3),
            "client_busy": round(cpu / elapsed, 3),
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
            "version": importlib.metadata.version("amplitude-analytics"),
        }
    )
    return result


async def _timed_official(
    client: Any, work: list[tuple[Any, Any]], yield_every: int
) -> tuple[list[int], dict[str, float]]:
    ticker = Ticker()
    ticker.start()
    await asyncio.sleep(0)
    latencies: list[int] = []
    record = latencies.append
    clock = time.perf_counter_ns
    identify = client.identify
    for i, (identify_obj, options) in enumerate(work):
        t0 = clock()
        identify(identify_obj, options)
        record(clock() - t0)
        if i % yield_every == 0:
            await asyncio.sleep(0)
    # Its senders run in threads: keep the ticker going while they drain.
    await asyncio.to_thread(_flush_and_wait, client)
    await ticker.stop()
    return latencies, ticker.result()


def _flush_and_wait(client: Any) -> None:
    """flush() hands the buffer to the sender pool and returns futures: wait for them."""
    for future in client.flush():
        if future is not None:
            future.result()


def raw_batches(ops: int, users: int, batch: int) -> list[list[dict[str, Any]]]:
    """The throughput workload as wire identifications, cut into batches of ``batch``."""
    names = [f"user-{i:07d}" for i in range(users)]
    items = [
        {
            "user_id": names[i % users],
            "user_properties": {"$set": {"plan": PLANS[i % 4]}, "$add": {"logins": 1}},
        }
        for i in range(ops)
    ]
    return [items[i : i + batch] for i in range(0, ops, batch)]


def raw_loop(
    base_url: str,
    ops: int,
    users: int,
    *,
    batch: int = 1000,
    in_flight: int = 4,
    pre_encoded: bool = False,
    rounds: int = 1,
) -> dict[str, Any]:
    """Post the workload as fast as one process can; see the module docstring.

    ``rounds`` posts the same batches that many times (``ops * rounds`` delivered): the
    loop is so quick that one pass is over before timing noise settles.
    """
    batches = raw_batches(ops, users, batch) * rounds
    prefix = b"api_key=" + form_escape(API_KEY.encode()) + b"&identification="
    encode = msgspec.json.Encoder().encode
    bodies = [prefix + form_escape(encode(b)) for b in batches] if pre_encoded else None
    gc.collect()
    gc.freeze()
    reset = control(base_url, "/_reset", {})
    result = asyncio.run(_raw(base_url, batches, bodies, prefix, in_flight))
    server = control(base_url, "/count")
    delivered = server["identifications"]
    result.update(server_load(reset, server, result["seconds"]))
    result.update(
        {
            "ops": ops * rounds,
            "delivered": delivered,
            "ops_per_second": round(delivered / result["seconds"]),
            "rounds": rounds,
            "pre_encoded": pre_encoded,
            "batch": batch,
            "in_flight": in_flight,
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
        }
    )
    return result


async def _raw(
    base_url: str,
    batches: list[list[dict[str, Any]]],
    bodies: list[bytes] | None,
    prefix: bytes,
    in_flight: int,
) -> dict[str, Any]:
    url = base_url + "/identify"
    encode = msgspec.json.Encoder().encode
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=in_flight)
    next_index = 0
    requests = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, requests
        while next_index < len(batches):
            index = next_index
            next_index += 1
            if bodies is not None:
                body = bodies[index]
            else:
                body = prefix + form_escape(encode(batches[index]))
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"raw loop: HTTP {response.status}")
            requests += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    ops = sum(len(b) for b in batches)
    return {
        "seconds": round(elapsed, 3),
        "requests": requests,
        "cpu_ms_per_1000_ops": round(cpu / ops * 1e6, 3),
        "client_busy": round(cpu / elapsed, 3),
    }


# -- the same peers with the work built in the timed loop (benchmarks.compare) --------------


def raw_user_loop(
    base_url: str, ops: int, users: int, *, batch: int = 1000, in_flight: int = 4
) -> dict[str, Any]:
    """A hand-written loop doing what the client does, no more: build each wire dict in
    the timed loop (``user-{i % users}``, ``$set plan``, ``$add logins``), and per batch
    of ``batch`` encode with msgspec, form-escape, and post to ``/identify``, at most
    ``in_flight`` posts at a time over one session. The ceiling for one process."""
    reset = control(base_url, "/_reset", {})
    result = asyncio.run(_raw_user_loop(base_url, ops, users, batch, in_flight))
    server = control(base_url, "/count")
    result.update(server_load(reset, server, result["seconds"]))
    delivered = server["identifications"]
    result.update(
        {
            "ops": ops,
            "users": users,
            "delivered": delivered,
            "ops_per_second": round(delivered / result["seconds"]),
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
        }
    )
    return result


async def _raw_user_loop(
    base_url: str, ops: int, users: int, batch: int, in_flight: int
) -> dict[str, Any]:
    url = base_url + "/identify"
    prefix = b"api_key=" + form_escape(API_KEY.encode()) + b"&identification="
    encode = msgspec.json.Encoder().encode
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    slots = asyncio.Semaphore(in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def post(session: aiohttp.ClientSession, body: bytes) -> None:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"raw loop: HTTP {response.status}")
        finally:
            slots.release()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        started = time.perf_counter()
        cpu_started = time.process_time()
        items: list[dict[str, Any]] = []
        for i in range(ops):
            items.append(
                {
                    "user_id": f"user-{i % users}",
                    "user_properties": {"$set": {"plan": "pro"}, "$add": {"logins": 1}},
                }
            )
            if len(items) == batch or i == ops - 1:
                body = prefix + form_escape(encode(items))
                items = []
                await slots.acquire()
                task = asyncio.create_task(post(session, body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return {
        "seconds": round(elapsed, 3),
        "us_per_op_cpu": round(cpu / ops * 1e6, 2),
        "client_busy": round(cpu / elapsed, 3),
    }


def official_user_loop(base_url: str, ops: int, users: int) -> dict[str, Any]:
    """The official SDK with each Identify and its EventOptions built in the timed loop,
    then ``shutdown()`` (flushes and joins its senders); delivered counted by the sink."""
    from amplitude import Amplitude, Config, EventOptions
    from amplitude import Identify as OfficialIdentify

    logging.getLogger("amplitude").setLevel(logging.CRITICAL)
    reset = control(base_url, "/_reset", {})
    client = Amplitude(API_KEY, Config(server_url=base_url + "/2/httpapi"))
    started = time.perf_counter()
    cpu_started = time.process_time()
    identify = client.identify
    for i in range(ops):
        identify(
            OfficialIdentify().set("plan", "pro").add("logins", 1),
            EventOptions(user_id=f"user-{i % users}"),
        )
    client.shutdown()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    server = control(base_url, "/count")
    result: dict[str, Any] = server_load(reset, server, elapsed)
    delivered = server["identifications"]
    result.update(
        {
            "ops": ops,
            "users": users,
            "delivered": delivered,
            "seconds": round(elapsed, 3),
            "ops_per_second": round(delivered / elapsed),
            "us_per_op_cpu": round(cpu / ops * 1e6, 2),
            "client_busy": round(cpu / elapsed, 3),
            "version": importlib.metadata.version("amplitude-analytics"),
        }
    )
    return result
