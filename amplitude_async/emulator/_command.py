"""The emulator's command line: ``python -m amplitude_async.emulator --port 8787 ...``.

``main(argv)`` is also what ``amplitude-async emulator`` can delegate to. Serves until
interrupted (Ctrl-C or SIGTERM), binding 127.0.0.1 unless ``--host`` and
``--allow-remote`` say otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ._definitions import definitions_from
from ._faults import Faults
from ._server import Emulator

__all__ = ["build_parser", "main", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m amplitude_async.emulator",
        description="Run a local Amplitude (Identify, HTTP V2, Batch, User Profile APIs).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (0: any free port)")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback address"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key (repeatable; default: any non-empty key)",
    )
    parser.add_argument("--secret-key", help="profile API secret key (default: any key)")
    parser.add_argument(
        "--eps-threshold",
        type=int,
        default=30,
        help="identifications per second per user/device before 429 (0: no throttling)",
    )
    parser.add_argument("--daily-quota", type=int, help="identifications per identity per day")
    parser.add_argument("--min-id-length", type=int, default=5)
    parser.add_argument("--max-items", type=int, default=2000)
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000)
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fraction of requests faulted, split evenly: 503, 5xx after applying, reset",
    )
    parser.add_argument("--rate-503", type=float, default=0.0)
    parser.add_argument("--rate-5xx-after", type=float, default=0.0)
    parser.add_argument("--rate-reset", type=float, default=0.0)
    parser.add_argument("--rate-hang", type=float, default=0.0)
    parser.add_argument("--hang-seconds", type=float, default=3600.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--seed", type=int, default=0, help="seed for random faults")
    profiles = parser.add_argument_group(
        "User Profile API definitions (defined before the first request)"
    )
    profiles.add_argument(
        "--definitions",
        metavar="FILE",
        help="JSON file of cohorts, recommendations, computations and predictions "
        "(the control API's bodies, in lists under those keys)",
    )
    profiles.add_argument(
        "--cohort",
        action="append",
        default=[],
        metavar="ID:PROPERTY=VALUE[,...]",
        help="a cohort of the users whose properties equal these (repeatable)",
    )
    profiles.add_argument(
        "--recommendation",
        action="append",
        default=[],
        metavar="REC_ID=ITEM[,ITEM...]",
        help="a recommendation model ranking these items per user (repeatable)",
    )
    profiles.add_argument(
        "--computation",
        action="append",
        default=[],
        metavar="COMP_ID=PROPERTY",
        help="a computation: the value of a user property (repeatable)",
    )
    profiles.add_argument(
        "--prediction",
        action="append",
        default=[],
        metavar="PREDICTION_ID",
        help="a prediction with a stable per-user score (repeatable)",
    )
    return parser


def emulator_from_args(args: argparse.Namespace) -> Emulator:
    share = args.fault_rate / 3
    faults = Faults(
        rate_503=args.rate_503 + share,
        rate_5xx_after=args.rate_5xx_after + share,
        rate_reset=args.rate_reset + share,
        rate_hang=args.rate_hang,
        hang_seconds=args.hang_seconds,
        latency=args.latency,
    )
    definitions = definitions_from(
        args.definitions, args.cohort, args.recommendation, args.computation, args.prediction
    )
    emulator = Emulator(
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        api_keys=args.api_keys,
        secret_key=args.secret_key,
        eps_threshold=args.eps_threshold or None,
        daily_quota=args.daily_quota,
        min_id_length=args.min_id_length,
        max_items=args.max_items,
        max_body_bytes=args.max_body_bytes,
        faults=faults,
        seed=args.seed,
    )
    definitions.apply(emulator)
    return emulator


def _defined(emulator: Emulator) -> str:
    """What the User Profile API knows besides users, by id, for the start-up banner."""
    models = emulator.models
    parts = [
        f"{label} {', '.join(ids)}"
        for label, ids in (
            ("cohorts", list(models.cohorts)),
            ("recommendations", list(models.recommendations)),
            ("computations", list(models.computations)),
            ("predictions", list(models.predictions)),
        )
        if ids
    ]
    return "; ".join(parts) or "no cohorts, recommendations, computations or predictions"


async def serve(emulator: Emulator) -> None:
    """Run ``emulator`` until SIGINT/SIGTERM (or cancellation)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on every platform (Windows); Ctrl-C still raises there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with emulator:
        print(f"Amplitude emulator listening on {emulator.base_url}", flush=True)
        print(f"  identify:    {emulator.identify_url}", flush=True)
        print(f"  httpapi:     {emulator.httpapi_url}", flush=True)
        print(f"  userprofile: {emulator.profile_url} ({_defined(emulator)})", flush=True)
        print(f"  control:     {emulator.control_url}/stats", flush=True)
        await stop.wait()
    print("Amplitude emulator stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        emulator = emulator_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(emulator))
    return 0
