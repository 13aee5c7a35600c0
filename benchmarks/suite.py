"""The side-by-side benchmark suite: amplitude-async, a raw aiohttp + msgspec loop and the
official ``amplitude-analytics`` SDK, in one run, on one machine, against one server.

    python -m benchmarks                  # = make bench: the full run (a few minutes)
    python -m benchmarks --smoke          # seconds: tiny sizes, one repeat (CI)
    python -m benchmarks --repeats 5 --out /tmp/bench --no-chart

Writes ``latest.json`` (everything: machine, versions, pinning, calibration, every run,
medians, ratios, targets), ``latest.md`` (the table) and ``latest.png`` (the chart, if
matplotlib is installed) to ``--out`` (default benchmarks/results/).

One lean sink process (benchmarks/_sink.py) serves the whole run, pinned to CPU 1; every
measurement runs in a fresh child process (benchmarks/scenarios.py) pinned to CPU 0.
Repeats are interleaved (all contenders once, then again) so a host that drifts during
the run drifts for everybody; figures are medians with min-max, and every comparison is
a ratio of figures from this run. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import peers
from ._common import (
    CLIENT_CPU,
    SERVER_CPU,
    affinity,
    calibrate,
    can_pin,
    child_result,
    control,
    isolated_benchmarks,
    isolated_env,
    pin,
    summary,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

#: Sizes of a full run (``make bench``): about four minutes on the 2-core machine.
FULL: dict[str, Any] = {
    "repeats": 3,
    "throughput_ops": 200_000,
    "throughput_users": 20_000,
    "raw_rounds": 5,
    "official_ops": 50_000,
    "caller_ops": 200_000,
    "yield_every": 10,
    "memory_ops": 1_000_000,
    "memory_users": 100_000,
    "hol_ops": 200_000,
    "hol_users": 10_000,
    "hol_hold": 0.0,
    "hol_short_hold": 0.5,
    "user_ops": 50_000,
    "stall_ops": 200_000,
    "stall_users_many": 20_000,
    "stall_users_few": 2_000,
}
#: A CI-sized run: every scenario and contender, tiny N, one repeat.
SMOKE: dict[str, Any] = {
    "repeats": 1,
    "throughput_ops": 5_000,
    "throughput_users": 500,
    "raw_rounds": 1,
    "official_ops": 2_000,
    "caller_ops": 5_000,
    "yield_every": 10,
    "memory_ops": 20_000,
    "memory_users": 2_000,
    "hol_ops": 5_000,
    "hol_users": 500,
    "hol_hold": 0.3,
    "hol_short_hold": 0.1,
    "user_ops": 3_000,
    "stall_ops": 5_000,
    "stall_users_many": 500,
    "stall_users_few": 50,
}

#: (scenario, contender, needs the official SDK)
PLAN: tuple[tuple[str, str, bool], ...] = (
    ("user_workloads", "new_users", False),
    ("user_workloads", "per_user_5", False),
    ("user_workloads", "per_user_5_no_coalesce", False),
    ("user_workloads", "service", False),
    ("user_workloads", "raw_loop", False),
    ("user_workloads", "official_sdk", True),
    ("stall", "users_20k", False),
    ("stall", "users_2k", False),
    ("throughput", "amplitude_async", False),
    ("throughput", "amplitude_async_no_coalesce", False),
    ("throughput", "amplitude_async_prebuilt", False),
    ("throughput", "raw_loop", False),
    ("throughput", "raw_http", False),
    ("throughput", "official_sdk", True),
    ("caller_cost", "amplitude_async", False),
    ("caller_cost", "official_sdk", True),
    ("memory", "amplitude_async", False),
    ("head_of_line", "baseline", False),
    ("head_of_line", "throttled", False),
    ("head_of_line", "throttled_short_hold", False),
)

SCENARIOS = ("user_workloads", "stall", "throughput", "caller_cost", "memory", "head_of_line")

#: The user workloads, each compared with the raw loop and the official SDK.
USER_WORKLOADS = ("new_users", "per_user_5", "per_user_5_no_coalesce", "service")


def params_for(scenario: str, contender: str, sizes: dict[str, Any]) -> dict[str, Any]:
    if scenario == "user_workloads":
        return {"ops": sizes["user_ops"]}
    if scenario == "stall":
        return {
            "ops": sizes["stall_ops"],
            "users_many": sizes["stall_users_many"],
            "users_few": sizes["stall_users_few"],
        }
    if scenario == "throughput":
        ops = sizes["official_ops"] if contender == "official_sdk" else sizes["throughput_ops"]
        return {"ops": ops, "users": sizes["throughput_users"], "rounds": sizes["raw_rounds"]}
    if scenario == "caller_cost":
        ops = sizes["official_ops"] if contender == "official_sdk" else sizes["caller_ops"]
        return {"ops": ops, "users": sizes["throughput_users"], "yield_every": sizes["yield_every"]}
    if scenario == "memory":
        return {"ops": sizes["memory_ops"], "users": sizes["memory_users"]}
    return {
        "ops": sizes["hol_ops"],
        "users": sizes["hol_users"],
        # 0: the client's default throttle_hold (15 s).
        "hold": sizes["hol_hold"] or None,
        "short_hold": sizes["hol_short_hold"],
    }


# -- the server ------------------------------------------------------------------------------


@contextlib.contextmanager
def sink_process(cpu: int | None = SERVER_CPU) -> Iterator[tuple[str, dict[str, Any]]]:
    """Start benchmarks/_sink.py (pinned to ``cpu`` where possible); yield its URL and
    what it reports about itself (pid, CPUs)."""
    cmd = [sys.executable, "-m", "benchmarks._sink", "--port", "0"]
    if cpu is not None and can_pin():
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("port "):
            raise RuntimeError(f"the sink did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        info = control(url, "/count")
        cpus = info.get("cpus")
        yield (
            url,
            {
                "pid": proc.pid,
                "cpus": cpus,
                "pinned": cpu is not None and cpus == [cpu],
            },
        )
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_child(spec: dict[str, Any], where: str, timeout: float = 900.0) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its result, or ``{"error": ...}``.

    ``where`` is an :func:`isolated_benchmarks` directory: the child imports the
    amplitude_async installed in this interpreter (compiled or pure), not the source tree.
    """
    return child_result(
        [sys.executable, "-P", "-m", "benchmarks.scenarios", json.dumps(spec)],
        cwd=where,
        env=isolated_env(where),
        timeout=timeout,
    )


# -- the machine -------------------------------------------------------------------------------


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            name: _version(name)
            for name in (
                "amplitude-async",
                "aiohttp",
                "msgspec",
                "anyio",
                "amplitude-analytics",
                "matplotlib",
            )
        },
        "git": _git(),
    }


def calibration() -> dict[str, float]:
    """The host-speed loop, on the client's CPU."""
    before = affinity()
    pin(CLIENT_CPU)
    try:
        return calibrate()
    finally:
        if before is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(before))


# -- aggregation -------------------------------------------------------------------------------

#: Figures summarised per scenario (dotted paths into a run's result).
FIGURES: dict[str, tuple[str, ...]] = {
    "user_workloads": (
        "ops_per_second",
        "us_per_op_cpu",
        "identifications_per_op",
        "client_busy",
        "server_busy",
    ),
    "stall": ("loop_stall.max_ms", "loop_stall.max_busy_ms", "ops_per_second"),
    "throughput": (
        "ops_per_second",
        "cpu_ms_per_1000_ops",
        "peak_rss_mb",
        "server_busy",
        "client_busy",
    ),
    "caller_cost": (
        "identify_us.p50",
        "identify_us.p99",
        "identify_us.p999",
        "identify_us.max",
        "loop_stall.max_ms",
        "loop_stall.p99_ms",
        "loop_stall.max_busy_ms",
        "loop_stall.p99_busy_ms",
        "ops_per_second",
    ),
    "memory": ("bytes_per_op", "client_bytes_per_op", "identify_object_bytes", "peak_rss_mb"),
    "head_of_line": (
        "cold_ops_per_second",
        "cpu_ms_per_1000_ops",
        "client_busy",
        "all_seconds",
        "server_429s",
        "sequence_violations",
        "users_out_of_sequence",
        "hot_users_out_of_sequence",
    ),
}


def _get(run: dict[str, Any], path: str) -> float | None:
    value: Any = run
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) else None


def aggregate(scenario: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": runs, "errors": len(runs) - len(good)}
    for path in FIGURES[scenario]:
        values = [v for v in (_get(r, path) for r in good) if v is not None]
        if values:
            out[path] = summary(values)
    if good and "ops" in good[0] and "delivered" in good[0]:
        out["all_delivered"] = all(r.get("delivered") == r.get("ops") for r in good)
    return out


def _median(result: dict[str, Any], scenario: str, contender: str, path: str) -> float | None:
    figure = result["scenarios"].get(scenario, {}).get(contender, {}).get(path)
    return None if figure is None else float(figure["median"])


def _pairwise(
    result: dict[str, Any], scenario: str, top: str, bottom: str, path: str
) -> dict[str, float] | None:
    """Ratio top/bottom per repeat (runs of one repeat ran back to back): min and max."""
    scen = result["scenarios"].get(scenario, {})
    a = [_get(r, path) for r in scen.get(top, {}).get("runs", [])]
    b = [_get(r, path) for r in scen.get(bottom, {}).get("runs", [])]
    ratios = [x / y for x, y in zip(a, b, strict=False) if x is not None and y]
    if not ratios:
        return None
    return {"min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def ratio(name: str, top: float | None, bottom: float | None, **extra: Any) -> None:
        if top is not None and bottom:
            out[name] = {"value": round(top / bottom, 3), **extra}

    def cpu_ratio(scenario: str, top: str, bottom: str) -> float | None:
        # CPU per operation, bottom's over top's: the same comparison in CPU cost, which
        # a shared host disturbs less than wall-clock rates (and which a sink-bound
        # contender's rate hides).
        a = _median(result, scenario, top, "cpu_ms_per_1000_ops")
        b = _median(result, scenario, bottom, "cpu_ms_per_1000_ops")
        return round(b / a, 3) if a and b else None

    ops = "ops_per_second"
    for name, peer in (
        ("throughput_vs_raw_loop", "raw_loop"),
        ("throughput_vs_official_sdk", "official_sdk"),
    ):
        ratio(
            name,
            _median(result, "throughput", "amplitude_async", ops),
            _median(result, "throughput", peer, ops),
            per_repeat=_pairwise(result, "throughput", "amplitude_async", peer, ops),
            cpu_per_op_ratio=cpu_ratio("throughput", "amplitude_async", peer),
        )
    for workload in USER_WORKLOADS:
        for peer in ("raw_loop", "official_sdk"):
            ratio(
                f"{workload}_vs_{peer}",
                _median(result, "user_workloads", workload, ops),
                _median(result, "user_workloads", peer, ops),
                per_repeat=_pairwise(result, "user_workloads", workload, peer, ops),
            )
    p99 = "identify_us.p99"
    ratio(
        "identify_p99_official_over_ours",
        _median(result, "caller_cost", "official_sdk", p99),
        _median(result, "caller_cost", "amplitude_async", p99),
        per_repeat=_pairwise(result, "caller_cost", "official_sdk", "amplitude_async", p99),
    )
    cold = "cold_ops_per_second"
    for name, contender in (
        ("head_of_line", "throttled"),
        ("head_of_line_short_hold", "throttled_short_hold"),
    ):
        ratio(
            name,
            _median(result, "head_of_line", contender, cold),
            _median(result, "head_of_line", "baseline", cold),
            per_repeat=_pairwise(result, "head_of_line", contender, "baseline", cold),
            cpu_per_op_ratio=cpu_ratio("head_of_line", contender, "baseline"),
        )
    return out


def _worst(result: dict[str, Any], scenario: str, contender: str, path: str) -> float | None:
    figure = result["scenarios"].get(scenario, {}).get(contender, {}).get(path)
    return None if figure is None else float(figure["max"])


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each issue-6 target: the measured value, met or not, and by how much if not."""
    r = result["ratios"]
    hol_bad = None
    hol = result["scenarios"].get("head_of_line", {})
    runs = [
        x
        for contender in ("throttled", "throttled_short_hold")
        for x in hol.get(contender, {}).get("runs", [])
        if "error" not in x
    ]
    if runs:
        hol_bad = float(
            sum(x["sequence_violations"] + x["hot_users_out_of_sequence"] for x in runs)
        )
    sizes = result["sizes"]
    hold = f"throttle_hold {sizes['hol_hold'] or 15:g} s"
    rows: list[tuple[str, str, float | None, str, float, str]] = [
        # name, what, value, comparison, bound, unit
        ("throughput_vs_raw_loop", "throughput vs the raw aiohttp+msgspec loop",
         r.get("throughput_vs_raw_loop", {}).get("value"), ">=", 0.8, "x"),
        ("throughput_vs_official_sdk", "throughput vs the official SDK",
         r.get("throughput_vs_official_sdk", {}).get("value"), ">=", 20.0, "x"),
        ("identify_p99_vs_official_sdk", "identify() p99: official SDK's / ours",
         r.get("identify_p99_official_over_ours", {}).get("value"), ">=", 20.0, "x"),
        ("head_of_line", f"head-of-line: the other 95%'s rate, 5% throttled / not ({hold})",
         r.get("head_of_line", {}).get("value"), ">=", 0.9, "x"),
        ("head_of_line_short_hold",
         f"the same, throttle_hold {sizes['hol_short_hold']:g} s (refused again and again)",
         r.get("head_of_line_short_hold", {}).get("value"), ">=", 0.9, "x"),
        ("hot_user_reordering", "hot users' operations out of order or missing (all runs)",
         hol_bad, "<=", 0.0, ""),
        ("bytes_per_queued_op",
         f"bytes per queued operation ({sizes['memory_ops']:,} queued, incl. the Identify)",
         _median(result, "memory", "amplitude_async", "bytes_per_op"), "<", 400.0, " B"),
        ("loop_stall",
         "worst event-loop stall while busy, in this process's CPU time (max over runs)",
         _worst(result, "caller_cost", "amplitude_async", "loop_stall.max_busy_ms"), "<=", 5.0,
         " ms"),
    ]  # fmt: skip
    out = []
    for name, what, value, op, bound, unit in rows:
        row: dict[str, Any] = {
            "name": name,
            "what": what,
            "target": f"{op} {bound:g}{unit}",
            "value": value,
        }
        if value is None:
            row["met"] = None
            row["by"] = "not measured"
        else:
            met = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
            row["met"] = met
            if not met:
                if op == ">=":
                    row["by"] = (
                        f"{(1 - value / bound) * 100:.0f}% short ({value:g}{unit} of {bound:g}{unit})"
                    )
                elif bound:
                    row["by"] = (
                        f"{(value / bound - 1) * 100:.0f}% over ({value:g}{unit} vs {bound:g}{unit})"
                    )
                else:
                    row["by"] = f"{value:g} instead of 0"
                note = MISS_NOTES.get(name)
                if note:
                    row["note"] = note
        out.append(row)
    wall = _worst(result, "caller_cost", "amplitude_async", "loop_stall.max_ms")
    for row in out:
        if row["name"] == "loop_stall" and wall is not None:
            # The wall-clock figure also counts the OS descheduling the whole process on a
            # shared host; the target is judged on the process's own CPU time.
            row["wall_clock_ms"] = wall
    return out


#: Why a target is missed, from profiling the client on the benchmark machine (see
#: docs/benchmarks.md "What the profile says"); attached only to missed targets.
MISS_NOTES: dict[str, str] = {
    "throughput_vs_raw_loop": (
        "The client is CPU-bound on the event loop at about 5 us per operation: identify() "
        "with its receipt and lane (about 1.5 us), building, encoding and placing each "
        "identification in a batch (about 1.5 us), escaping the body (about 0.5 us), "
        "resolving receipts and freeing lanes (about 0.4 us), and garbage collection. The "
        "raw loop spends about 1.3 us per item in all: it encodes a pre-built list once per "
        "batch. Compare cpu_ms_per_1000_ops."
    ),
    "throughput_vs_official_sdk": (
        "The official SDK's rate is bounded by its caller (60-120 us per identify() call, "
        "most of it deep-copying the event); 20x that rate needs about 4 us of client CPU "
        "per operation on this machine, and the client spends about 5."
    ),
    "head_of_line": (
        "Each 429 sends the batch's other identities back to their lanes as receipts: they "
        "are taken, coalesced and encoded again for the next request, and each time a hot "
        "lane's hold ends its whole backlog is coalesced and encoded again before it is "
        "refused again. The client is CPU-bound (client_busy), so that re-work slows "
        "everybody; compare cpu_ms_per_1000_ops with the baseline."
    ),
    "bytes_per_queued_op": (
        "The Identify itself takes identify_object_bytes (the object and its flat operation "
        "tuple); the client's own share (receipt, lane slot) is in client_bytes_per_op."
    ),
    "loop_stall": (
        "Full garbage collections scan every queued receipt and Identify, so they grow with "
        "the queue (100,000+ operations queued here), and one sender step assembles and "
        "escapes a whole batch of up to 1,000 items (about 2 ms) before it yields; a "
        "smaller batch_max_items shortens the latter."
    ),
}


MISS_NOTES["head_of_line_short_hold"] = MISS_NOTES["head_of_line"]


# -- the run -------------------------------------------------------------------------------------


def run_suite(
    sizes: dict[str, Any],
    *,
    only: set[str] | None = None,
    log: Any = None,
) -> dict[str, Any]:
    def say(text: str) -> None:
        if log is not None:
            print(text, file=log, flush=True)

    official = peers.official_available()
    plan = [
        (s, c)
        for s, c, needs_official in PLAN
        if (only is None or s in only) and (official or not needs_official)
    ]
    result: dict[str, Any] = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "sizes": sizes,
        "machine": machine_info(),
        "calibration": {"start": calibration()},
        "server": "benchmarks/_sink.py (lean parsing sink, its own process)",
        "official_sdk": "measured" if official else "skipped: amplitude-analytics is not installed",
        "scenarios": {},
    }
    say(f"calibration: {result['calibration']['start']['best_ms']} ms (lower is faster)")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in plan}
    total = len(plan) * sizes["repeats"]
    done = 0
    started = time.perf_counter()
    with isolated_benchmarks() as where, sink_process() as (url, sink):
        result["pinning"] = {
            "possible": can_pin(),
            "client_cpu": CLIENT_CPU if can_pin() else None,
            "server_cpu": SERVER_CPU if can_pin() else None,
            "server_pinned": sink["pinned"],
            "server_cpus": sink["cpus"],
        }
        for repeat in range(sizes["repeats"]):
            if repeat:
                result["calibration"].setdefault("between_repeats", []).append(calibration())
            for scenario, contender in plan:
                spec = {
                    "scenario": scenario,
                    "contender": contender,
                    "base_url": url,
                    "params": params_for(scenario, contender, sizes),
                }
                run = run_child(spec, where)
                # Which amplitude_async the children imported, and what of it is compiled.
                build = run.pop("build", None)
                if build is not None:
                    result.setdefault("build", build)
                run["repeat"] = repeat + 1
                runs[(scenario, contender)].append(run)
                done += 1
                say(f"[{done}/{total}] {scenario:<12} {contender:<28} {_brief(scenario, run)}")
    result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    result["pinning"]["client_pinned"] = all(
        r.get("client_pinned") for rs in runs.values() for r in rs if "error" not in r
    )
    for (scenario, contender), rs in runs.items():
        result["scenarios"].setdefault(scenario, {})[contender] = aggregate(scenario, rs)
    result["calibration"]["end"] = calibration()
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["ratios"] = ratios(result)
    result["targets"] = targets(result)
    result["errors"] = sum(
        s.get("errors", 0) for c in result["scenarios"].values() for s in c.values()
    )
    return result


def _brief(scenario: str, run: dict[str, Any]) -> str:
    if "error" in run:
        return "ERROR " + run["error"]
    if scenario == "throughput":
        return (
            f"{run['ops_per_second']:>9,} ops/s  {run['cpu_ms_per_1000_ops']:.2f} ms CPU/1000 ops"
        )
    if scenario == "user_workloads":
        return f"{run['ops_per_second']:>9,} ops/s  {run['us_per_op_cpu']:.2f} us CPU/op"
    if scenario == "stall":
        stall = run["loop_stall"]
        return f"worst stall {stall['max_ms']} ms wall, {stall['max_busy_ms']} ms CPU"
    if scenario == "caller_cost":
        lat = run["identify_us"]
        return (
            f"identify p50 {lat['p50']} us p99 {lat['p99']} us; "
            f"worst stall {run['loop_stall']['max_busy_ms']} ms CPU, "
            f"{run['loop_stall']['max_ms']} ms wall"
        )
    if scenario == "memory":
        return f"{run['bytes_per_op']} B/op (Identify {run['identify_object_bytes']} B), peak {run['peak_rss_mb']} MB"
    return (
        f"cold {run['cold_ops_per_second']:,} ops/s, {run['server_429s']} x 429, "
        f"{run['sequence_violations']} out of sequence"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (seconds)")
    parser.add_argument("--repeats", type=int, help="runs of each contender (default 3)")
    parser.add_argument("--only", help=f"comma-separated scenarios to run ({', '.join(SCENARIOS)})")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=N",
        help=f"override one size ({', '.join(FULL)})",
    )
    parser.add_argument("--out", default=str(RESULTS), help="directory for latest.{json,md,png}")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    sizes = dict(SMOKE if args.smoke else FULL)
    if args.repeats:
        sizes["repeats"] = args.repeats
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in sizes:
            parser.error(f"unknown size {name!r}; one of {', '.join(sizes)}")
        sizes[name] = type(sizes[name])(float(value) if "." in value else int(value))
    only = None
    if args.only:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = only - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    from . import report

    result = run_suite(sizes, only=only, log=None if args.quiet else sys.stderr)
    paths = report.write(result, Path(args.out), chart=not args.no_chart)
    if not args.quiet:
        print(report.markdown(result))
        print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
