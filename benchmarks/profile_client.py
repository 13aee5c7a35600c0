"""Where the client's time goes: one suite scenario in-process under cProfile.

    python -m benchmarks.profile_client                       # throughput, 200,000 ops
    python -m benchmarks.profile_client --scenario hol --users 10000   # head-of-line, throttled
    python -m benchmarks.profile_client --sort cumulative --top 40

Starts its own sink (pinned to the other CPU), pins itself to CPU 0, runs the scenario
once with the profiler on, and prints the top functions with their cost per operation
(microseconds of own time per enqueued operation; cProfile roughly doubles the cost of
small calls, so read the shares, not the absolute figures).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
from typing import Any

from amplitude_async import ClientConfig

from . import scenarios
from ._common import CLIENT_CPU, control, pin
from .suite import sink_process
from .throughput import workload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=("throughput", "hol"), default="throughput")
    parser.add_argument("--hold", type=float, default=0.5, help="throttle_hold for --scenario hol")
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    pin(CLIENT_CPU)
    scenarios.quiet_sdk_logs()
    profiler = cProfile.Profile()
    with sink_process() as (url, _):
        run: dict[str, Any]
        # Build the workload first: only the client's run is profiled.
        if args.scenario == "throughput":
            work = workload(args.ops, args.users)
            config = ClientConfig(queue_max=max(100_000, args.ops))
            gc.collect()
            gc.freeze()
            profiler.enable()
            run = asyncio.run(scenarios._ours(url, work, config, False, 100))
        else:
            work, hot, _counts = scenarios.hol_workload(args.ops, args.users, 0.05, 10)
            gc.collect()
            gc.freeze()
            control(url, "/_reset", {"track_seq": True})
            control(url, "/_throttle", {"users": sorted(hot)})
            profiler.enable()
            run = asyncio.run(scenarios._hol(url, work, hot, args.hold, True))
        profiler.disable()
    print({k: v for k, v in run.items() if not isinstance(v, dict)})
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(args.sort)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"profiled {total:.2f} s; {total / args.ops * 1e6:.2f} us per operation")
    rows = []
    for func, (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tottime if args.sort == "tottime" else cumtime, calls, tottime, cumtime, func))
    rows.sort(reverse=True)
    print(f"{'own us/op':>10} {'cum us/op':>10} {'calls':>10}  function")
    for _key, calls, tottime, cumtime, (path, line, name) in rows[: args.top]:
        where = path.split("site-packages/")[-1].split("/work/main/")[-1]
        print(
            f"{tottime / args.ops * 1e6:10.3f} {cumtime / args.ops * 1e6:10.3f} {calls:10d}  "
            f"{name} ({where}:{line})"
        )


if __name__ == "__main__":
    main()
