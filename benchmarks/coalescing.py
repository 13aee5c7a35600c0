"""Coalescing on vs off, against the emulator in its own process, with hot users.

    python -m benchmarks.coalescing            # 50,000 ops over 5,000 users; 1% get 50%
    python -m benchmarks.coalescing --quick    # a smoke run of a few seconds

The workload: ``--ops`` operations over ``--users`` users, offered at ``--rate``
operations per second; ``--hot-fraction`` of the users (1%) receive ``--hot-share`` of
the operations (50%). Each operation is a realistic small update (last-seen time and an
event counter, page appends, plan changes, a trial flag set and unset). The emulator
(``python -m amplitude_async.emulator``) runs in a separate process, pinned to the other
CPU where the OS allows, with ``--eps-threshold`` 30 identifications per second per user,
so hot users get real 429s. The client runs twice on the same operations: coalescing
off, then on (emulator reset in between), each bounded by ``--timeout`` seconds.

Reported per mode: identifications sent per operation (re-sends count again), 429
answers, delivered operations per second (delivered / wall time from the first
identify() to the last outcome), wall time, and whether every user's properties on the
emulator equal the operations applied one at a time by the reference semantics.
Printed as a table and written as JSON (default ``benchmarks/results/coalescing.json``;
``--quick`` writes JSON only when ``--json`` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from amplitude_async import AmplitudeClient, ClientConfig, Identify
from amplitude_async.emulator import apply_identification

API_KEY = "bench-coalescing-key"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_JSON = os.path.join(ROOT, "benchmarks", "results", "coalescing.json")
PLANS = ("free", "pro", "team", "enterprise")


@contextmanager
def emulator_process(eps_threshold: int, cpu: int | None = 1) -> Iterator[str]:
    """Start ``python -m amplitude_async.emulator --port 0`` in its own process; yield its
    base URL. Stopped with SIGTERM (it shuts down cleanly on it)."""
    cmd = [
        sys.executable,
        "-m",
        "amplitude_async.emulator",
        "--port",
        "0",
        "--api-key",
        API_KEY,
        "--eps-threshold",
        str(eps_threshold),
    ]
    pin = cpu is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1

    def pin_to_cpu() -> None:
        if pin:
            os.sched_setaffinity(0, {cpu})

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=pin_to_cpu)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        marker = "listening on "
        if marker not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield line.split(marker, 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def workload(
    ops: int, users: int, hot_fraction: float, hot_share: float, seed: int
) -> list[Identify]:
    """``ops`` operations; ``hot_fraction`` of the users get ``hot_share`` of them."""
    rng = random.Random(seed)
    hot, cold = user_names(users, hot_fraction)
    out: list[Identify] = []
    for i in range(ops):
        user = rng.choice(hot) if rng.random() < hot_share else rng.choice(cold)
        op = Identify(user_id=user)
        kind = rng.random()
        if kind < 0.60:
            op.set("last_seen", i).add("events", 1)
        elif kind < 0.80:
            op.add("events", 1).append("pages", f"/page/{rng.randrange(20)}")
        elif kind < 0.90:
            op.set_once("first_seen", i).set("plan", rng.choice(PLANS))
        elif kind < 0.95:
            op.set("trial", True)
        else:
            op.unset("trial")  # $set then $unset of one property: never merged
        out.append(op)
    return out


def user_names(users: int, hot_fraction: float) -> tuple[list[str], list[str]]:
    """(hot, cold) user ids: the first ``hot_fraction`` of the users are the hot ones."""
    names = [f"user-{i:07d}" for i in range(users)]
    hot_count = max(1, round(users * hot_fraction))
    return names[:hot_count], names[hot_count:] or names


def reference(ops: list[Identify]) -> dict[str, dict[str, Any]]:
    """Every user's properties with the operations applied one at a time."""
    state: dict[str, dict[str, Any]] = {}
    for op in ops:
        assert op.user_id is not None
        state[op.user_id] = apply_identification(state.get(op.user_id, {}), op.to_dict())
    return state


async def run_mode(
    base_url: str,
    ops: list[Identify],
    *,
    hot: set[str],
    coalesce: bool,
    rate: float,
    budget: float,
    throttle_hold: float,
) -> dict[str, Any]:
    config = ClientConfig(
        coalesce=coalesce,
        throttle_hold=throttle_hold,
        queue_max=max(100_000, len(ops)),
        shutdown_timeout=1.0,
    )
    async with aiohttp.ClientSession() as control:
        async with control.post(base_url + "/_emulator/reset") as resp:
            resp.raise_for_status()
        amp = AmplitudeClient(API_KEY, server_url=base_url + "/identify", config=config)
        async with amp:
            loop = asyncio.get_running_loop()
            started = loop.time()
            receipts = []
            tick = max(1, int(rate / 200))  # offer the load in 5 ms steps
            for i, op in enumerate(ops):
                receipts.append(await amp.identify(op))
                if i % tick == tick - 1:
                    delay = started + (i + 1) / rate - loop.time()
                    await asyncio.sleep(max(0.0, delay))
            offered = loop.time() - started
            finished = True
            try:
                await asyncio.wait_for(amp.flush(), max(0.1, budget - offered))
            except TimeoutError:
                finished = False
            wall = loop.time() - started
            stats = amp.stats()
        # aclose() (by the async with) failed what was left with reason "shutdown".
        async with control.get(base_url + "/_emulator/stats") as resp:
            server = await resp.json()
        async with control.get(base_url + "/_emulator/users") as resp:
            users = await resp.json()
        async with control.get(base_url + "/_emulator/applied") as resp:
            applied = await resp.json()
    hot_ops = sum(1 for op in ops if op.user_id in hot)
    hot_applied = sum(1 for entry in applied if entry["user_id"] in hot)
    delivered = sum(1 for r in receipts if r.outcome is not None and r.outcome.ok)
    failed = len(ops) - delivered
    matches: bool | None = None
    if failed == 0:
        matches = users == reference(ops)
    return {
        "coalesce": coalesce,
        "ops": len(ops),
        "delivered": delivered,
        "failed": failed,
        "finished_within_timeout": finished,
        "identifications_sent": stats.identifications,
        "identifications_per_op": round(stats.identifications / len(ops), 4),
        "identifications_applied": server["applied"],
        "hot_ops": hot_ops,
        "hot_identifications_applied": hot_applied,
        "cold_identifications_applied": len(applied) - hot_applied,
        "requests": stats.requests,
        "throttle_responses": stats.throttle_responses,
        "throttled_identifications": server["throttled_items"],
        "wall_seconds": round(wall, 3),
        "offer_seconds": round(offered, 3),
        "delivered_ops_per_second": round(delivered / wall) if wall > 0 else 0,
        "state_matches_reference": matches,
    }


async def run_all(args: argparse.Namespace, base_url: str) -> list[dict[str, Any]]:
    results = []
    for coalesce in (False, True):
        ops = workload(args.ops, args.users, args.hot_fraction, args.hot_share, args.seed)
        results.append(
            await run_mode(
                base_url,
                ops,
                hot=set(user_names(args.users, args.hot_fraction)[0]),
                coalesce=coalesce,
                rate=args.rate,
                budget=args.timeout,
                throttle_hold=args.throttle_hold,
            )
        )
    return results


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        ("coalescing", lambda r: "on" if r["coalesce"] else "off"),
        ("identifications sent / op", lambda r: f"{r['identifications_per_op']:.3f}"),
        (
            "  hot users: applied / their op",
            lambda r: f"{r['hot_identifications_applied'] / r['hot_ops']:.3f}",
        ),
        ("429 answers", lambda r: f"{r['throttle_responses']:,}"),
        ("identifications refused (429)", lambda r: f"{r['throttled_identifications']:,}"),
        ("requests", lambda r: f"{r['requests']:,}"),
        ("delivered / failed", lambda r: f"{r['delivered']:,} / {r['failed']:,}"),
        ("delivered ops/s", lambda r: f"{r['delivered_ops_per_second']:,}"),
        ("wall time (s)", lambda r: f"{r['wall_seconds']:.2f}"),
        (
            "state = reference",
            lambda r: {True: "yes", False: "NO", None: "n/a"}[r["state_matches_reference"]],
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = []
    for name, cell in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell(r):>14}" for r in results))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.coalescing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--hot-fraction", type=float, default=0.01)
    parser.add_argument("--hot-share", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=10_000.0, help="operations offered per s")
    parser.add_argument("--eps-threshold", type=int, default=30)
    parser.add_argument(
        "--throttle-hold", type=float, default=15.0, help="client hold after a 429 (s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="per mode; what is left then fails (s)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help=f"write results here (default {DEFAULT_JSON})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2,000 ops over 500 users at 4,000 ops/s, 0.5 s holds, 3 s timeout",
    )
    parser.add_argument("--verbose", action="store_true", help="show the client's log")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    json_path = args.json
    if args.quick:
        args.ops, args.users, args.rate = 2_000, 500, 4_000.0
        args.throttle_hold, args.timeout = 0.5, 3.0
    elif json_path is None:
        json_path = DEFAULT_JSON
    if not args.verbose:
        # One warning per 429 would bury the table; the counts are in the results.
        logging.getLogger("amplitude_async").setLevel(logging.ERROR)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    with emulator_process(args.eps_threshold) as base_url:
        results = asyncio.run(run_all(args, base_url))
    hot_users = max(1, round(args.users * args.hot_fraction))
    report = {
        "benchmark": "coalescing",
        "command": "python -m benchmarks.coalescing" + (" --quick" if args.quick else ""),
        "workload": {
            "ops": args.ops,
            "users": args.users,
            "hot_users": hot_users,
            "hot_share": args.hot_share,
            "offered_ops_per_second": args.rate,
            "eps_threshold": args.eps_threshold,
            "throttle_hold_seconds": args.throttle_hold,
            "timeout_seconds": args.timeout,
            "seed": args.seed,
        },
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "results": {("on" if r["coalesce"] else "off"): r for r in results},
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(
        f"{args.ops:,} ops over {args.users:,} users ({hot_users:,} hot users get "
        f"{args.hot_share:.0%}), offered at {args.rate:,.0f} ops/s; emulator eps_threshold "
        f"{args.eps_threshold}, client throttle_hold {args.throttle_hold:g} s\n"
    )
    print(table(results))
    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")
        print(f"\nwrote {json_path}")
    return report


if __name__ == "__main__":
    main()
