"""Profile lookups per second, and the client's added latency over a raw aiohttp request.

The server runs in another process: by default a plain aiohttp.web handler answering
every ``GET /v1/userprofile`` with one fixed, realistic profile (about 1.5 KB:
properties, cohorts, a recommendation); with ``--server emulator`` the local Amplitude
emulator, holding ``USERS`` identified users with a few properties and two cohorts.

1. Throughput: ``ProfileClient.get_many`` over ``--lookups`` ids at ``--concurrency``,
   with client-side pacing off (the pacer would hold it at 600/min by design).
2. Added latency: ``--samples`` sequential calls, alternating ``ProfileClient.get``
   and a raw ``session.get(...)`` + ``read()`` with the same URL, query and header on
   its own keep-alive session; reports p50/p99 of each and the difference. The raw side
   does no validation, status mapping or decoding; the difference is what they cost.

    .venv/bin/python benchmarks/profile_lookup.py --concurrency 32 --lookups 5000
    .venv/bin/python benchmarks/profile_lookup.py --server emulator
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from aiohttp import web

from amplitude_async import ProfileClient

SECRET = "bench-secret"
BODY = json.dumps(
    {
        "userData": {
            "user_id": "user-000123",
            "device_id": "5f2b8a7e-1c3d-4e5f-9a0b-1c2d3e4f5a6b",
            "amplitude_id": 123456789012,
            "amp_props": {
                "plan": "pro",
                "seats": 12,
                "country": "DE",
                "language": "de",
                "signup_date": "2024-03-18",
                "last_seen": "2026-11-02T10:11:12Z",
                "lifetime_value": 1234.5,
                "is_trial": False,
                "tags": ["beta", "newsletter", "mobile"],
                "preferences": {"theme": "dark", "emails": True, "digest": "weekly"},
                "utm_source": "google",
                "utm_campaign": "autumn-sale",
                "app_version": "5.12.1",
                "platform": "iOS",
                "referrals": 3,
            },
            "cohort_ids": ["abc123", "def456", "ghi789", "jkl012", "mno345"],
            "computations": {"comp-1": "17", "comp-2": "2026-10-30"},
            "recommendations": [
                {
                    "rec_id": "rec-home",
                    "child_rec_id": "rec-home-child",
                    "items": [f"sku-{i:04d}" for i in range(10)],
                    "is_control": False,
                    "recommendation_source": "model",
                    "last_updated": 1762077072,
                }
            ],
            "propensities": None,
        }
    }
).encode()
PATH = "/v1/userprofile"
QUERY = {"get_amp_props": "true", "get_cohort_ids": "true"}
USERS = 1000


def _user(i: int) -> str:
    return f"user-{i % USERS:06d}"


def _serve_emulator(conn: Connection) -> None:
    from amplitude_async.emulator import Emulator

    async def main() -> None:
        async with Emulator(secret_key=SECRET, eps_threshold=None) as emu:
            emu.define_cohort("pro", {"plan": "pro"})
            emu.define_cohort("big", lambda props: props.get("seats", 0) > 10)
            users = [
                {
                    "user_id": _user(i),
                    "user_properties": {
                        "$set": {"plan": "pro" if i % 3 else "free", "seats": i % 20, "n": i}
                    },
                }
                for i in range(USERS)
            ]
            async with aiohttp.ClientSession() as session:
                for start in range(0, USERS, 500):
                    form = {
                        "api_key": "k",
                        "identification": json.dumps(users[start : start + 500]),
                    }
                    async with session.post(emu.identify_url, data=form) as r:
                        assert r.status == 200, await r.text()
            conn.send(emu.port)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
            await stop.wait()

    asyncio.run(main())


def _serve(conn: Connection) -> None:
    async def profile(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get(PATH, profile)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        conn.send(server.sockets[0].getsockname()[1])
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def throughput(url: str, lookups: int, concurrency: int) -> float:
    async with ProfileClient(
        SECRET, server_url=url, rate_limit_per_minute=None, max_connections=concurrency
    ) as profiles:
        # Warm the connection pool so the figure is steady state, not TCP handshakes.
        async for _ in profiles.get_many(
            [f"w{i}" for i in range(concurrency)], concurrency=concurrency
        ):
            pass
        ids = (_user(i) for i in range(lookups))
        failed = 0
        start = time.perf_counter()
        async for result in profiles.get_many(
            ids, concurrency=concurrency, amp_props=True, cohort_ids=True
        ):
            failed += not result.ok
        elapsed = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{failed} lookups failed")
    return lookups / elapsed


async def added_latency(url: str, samples: int) -> dict[str, float]:
    headers = {"Authorization": f"Api-Key {SECRET}", "Accept": "application/json"}
    ours: list[float] = []
    raw: list[float] = []
    async with (
        ProfileClient(SECRET, server_url=url, rate_limit_per_minute=None) as profiles,
        aiohttp.ClientSession() as session,
    ):
        for i in range(samples + 200):  # the first 200 pairs warm up and are dropped
            user = _user(i)
            t0 = time.perf_counter()
            await profiles.get(user, amp_props=True, cohort_ids=True)
            t1 = time.perf_counter()
            async with session.get(url, params={"user_id": user, **QUERY}, headers=headers) as r:
                await r.read()
            t2 = time.perf_counter()
            if i >= 200:
                ours.append(t1 - t0)
                raw.append(t2 - t1)
    us = 1e6
    return {
        "client_p50_us": _pct(ours, 50) * us,
        "client_p99_us": _pct(ours, 99) * us,
        "raw_p50_us": _pct(raw, 50) * us,
        "raw_p99_us": _pct(raw, 99) * us,
        "added_p50_us": (_pct(ours, 50) - _pct(raw, 50)) * us,
        "added_p99_us": (_pct(ours, 99) - _pct(raw, 99)) * us,
        "added_mean_us": (statistics.fmean(ours) - statistics.fmean(raw)) * us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--server", choices=("static", "emulator"), default="static")
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve if args.server == "static" else _serve_emulator, args=(child,), daemon=True
    )
    server.start()
    try:
        port = parent.recv()
        url = f"http://127.0.0.1:{port}{PATH}"
        rate = asyncio.run(throughput(url, args.lookups, args.concurrency))
        latency = asyncio.run(added_latency(url, args.samples))
    finally:
        parent.send("stop")
        server.join(timeout=5)
    result: dict[str, Any] = {
        "server": args.server,
        "lookups": args.lookups,
        "concurrency": args.concurrency,
        "lookups_per_s": round(rate),
        **{k: round(v, 1) for k, v in latency.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
