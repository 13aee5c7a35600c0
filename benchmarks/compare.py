"""The user workloads under several interpreters side by side, in one run.

    python -m benchmarks.compare --venv base=/work/wt/_venvs/base76 \\
        --venv pure=/path/to/pure-venv --venv compiled=/path/to/compiled-venv
    python -m benchmarks.compare --quick              # seconds: this interpreter only

Each ``--venv NAME=PATH`` (a venv directory or a python executable) is measured with the
same workloads (benchmarks/workloads.py: every op a new user; 5 per user, with coalescing
on and off; one op per loop turn; the worst loop stall in a 200k burst with 20,000 and
2,000 users; bytes per queued op), each run in a fresh child process of that interpreter
that imports only the package installed there (``-P``, run from a directory holding just
a link to benchmarks/), so the source tree never shadows it. The peers, a raw aiohttp +
msgspec loop and the official ``amplitude-analytics`` SDK (if installed in the
interpreter running this), run in the same repeats.

One sink process (benchmarks/_sink.py) serves the whole run on the other CPU. Repeats
alternate: every workload under every interpreter once, in a rotated order, then again,
so a host that gets busier slows everybody alike. Figures are medians with min-max;
ratios are of medians, with the range of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from . import peers
from ._common import child_result, isolated_benchmarks, isolated_env
from .suite import _get, machine_info, sink_process

ROOT = Path(__file__).resolve().parent.parent

#: workload -> (params, the figure it is judged by, higher is better)
FULL: dict[str, tuple[dict[str, Any], str, bool]] = {
    "new_users": ({"ops": 50_000}, "ops_per_second", True),
    "per_user_5": ({"ops": 50_000}, "ops_per_second", True),
    "per_user_5_no_coalesce": ({"ops": 50_000, "coalesce": False}, "ops_per_second", True),
    "service": ({"ops": 50_000}, "ops_per_second", True),
    "stall_20k_users": ({"ops": 200_000, "users": 20_000}, "loop_stall.max_ms", False),
    "stall_2k_users": ({"ops": 200_000, "users": 2_000}, "loop_stall.max_ms", False),
    # The same bursts in a process that froze its objects after start-up (gc.freeze()):
    # full collections then walk only what was made since (docs/benchmarks.md).
    "stall_20k_users_gc_frozen": (
        {"ops": 200_000, "users": 20_000, "gc_freeze": True},
        "loop_stall.max_ms",
        False,
    ),
    "stall_2k_users_gc_frozen": (
        {"ops": 200_000, "users": 2_000, "gc_freeze": True},
        "loop_stall.max_ms",
        False,
    ),
    "memory": ({"ops": 200_000, "users": 20_000}, "bytes_per_op", False),
}
#: Peers: measured under the interpreter running this module.
PEERS: dict[str, tuple[dict[str, Any], str, bool]] = {
    "raw": ({"ops": 50_000}, "ops_per_second", True),
    "official": ({"ops": 50_000}, "ops_per_second", True),
}
QUICK_OPS = {"ops": 3_000, "users": 300}


def _workload_of(name: str) -> str:
    if name.startswith("stall"):
        return "stall"
    if name == "per_user_5_no_coalesce":
        return "per_user_5"
    return name


def python_of(path: str) -> str:
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "bin" / "python"
    if not candidate.exists():
        raise SystemExit(f"no python at {candidate}")
    # Absolute but not resolved: a venv's python is a link, and resolving it would leave
    # the venv.
    return os.path.abspath(candidate)


def run_child(
    python: str, spec: dict[str, Any], where: str, timeout: float = 600.0
) -> dict[str, Any]:
    """One workload in a fresh ``python -P`` started in ``where`` (see the module doc)."""
    return child_result(
        [python, "-P", "-m", "benchmarks.workloads", json.dumps(spec)],
        cwd=where,
        env=isolated_env(where),
        timeout=timeout,
    )


def _range(values: list[float]) -> dict[str, float]:
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
    }


def summarise(
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    figures: dict[str, tuple[dict[str, Any], str, bool]],
    base: str | None,
) -> dict[str, Any]:
    """Medians with ranges per (workload, interpreter), and same-repeat ratios."""
    out: dict[str, Any] = {}
    peer_rates = {
        name: [_get(r, "ops_per_second") for r in runs.get(name, {}).get("peer", [])]
        for name in PEERS
    }
    for workload, per_venv in runs.items():
        if workload in PEERS:
            continue
        figure, higher = figures[workload][1], figures[workload][2]
        entry: dict[str, Any] = {"figure": figure, "higher_is_better": higher}
        for venv, rs in per_venv.items():
            values = [_get(r, figure) for r in rs]
            good = [v for v in values if v is not None]
            cell: dict[str, Any] = {"errors": len(values) - len(good)}
            if good:
                cell.update(_range(good))
                cpu = [v for v in (_get(r, "us_per_op_cpu") for r in rs) if v is not None]
                if cpu:
                    cell["us_per_op_cpu"] = _range(cpu)
                busy = [v for v in (_get(r, "loop_stall.max_busy_ms") for r in rs) if v is not None]
                if busy:
                    cell["max_busy_ms"] = _range(busy)
                for key, path in (
                    ("max_outside_full_gc_ms", "loop_stall.max_outside_full_gc_ms"),
                    ("full_collections", "gc.full_collections"),
                    ("full_collection_max_ms", "gc.full_collection_max_ms"),
                ):
                    found = [v for v in (_get(r, path) for r in rs) if v is not None]
                    if found:
                        cell[key] = _range(found)
                ids = [v for v in (_get(r, "identifications_per_op") for r in rs) if v is not None]
                if ids:
                    cell["identifications_per_op"] = _range(ids)
                ratios: dict[str, Any] = {}
                comparisons = {f"vs_{p}": peer_rates[p] for p in PEERS if higher}
                if base is not None and venv != base:
                    comparisons["vs_" + base] = [_get(r, figure) for r in per_venv.get(base, [])]
                for label, others in comparisons.items():
                    pairs = [
                        (v, o) for v, o in zip(values, others, strict=False) if v and o
                    ]  # same repeat
                    if not pairs:
                        continue
                    per_repeat = [v / o for v, o in pairs]
                    ratios[label] = {
                        "of_medians": round(
                            statistics.median(v for v, _ in pairs)
                            / statistics.median(o for _, o in pairs),
                            3,
                        ),
                        "min": round(min(per_repeat), 3),
                        "max": round(max(per_repeat), 3),
                    }
                if ratios:
                    cell["ratios"] = ratios
            entry[venv] = cell
        out[workload] = entry
    for name in PEERS:
        rs = runs.get(name, {}).get("peer", [])
        good = [v for v in (_get(r, "ops_per_second") for r in rs) if v is not None]
        if good:
            out[name] = {"figure": "ops_per_second", "peer": _range(good)}
    return out


def _fmt(value: float, figure: str) -> str:
    if figure == "ops_per_second":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def markdown(result: dict[str, Any]) -> str:
    venvs = list(result["venvs"])
    lines = [
        f"{result['date']}, {result['repeats']} alternating repeats; median (min-max)",
        "",
        "| workload | figure | " + " | ".join(venvs) + " |",
        "|---|---|" + "---|" * len(venvs),
    ]
    for workload, entry in result["summary"].items():
        if workload in PEERS:
            continue
        figure = entry["figure"]
        cells = []
        for venv in venvs:
            cell = entry.get(venv, {})
            if "median" not in cell:
                cells.append("error")
                continue
            text = (
                f"{_fmt(cell['median'], figure)} "
                f"({_fmt(cell['min'], figure)}-{_fmt(cell['max'], figure)})"
            )
            if "us_per_op_cpu" in cell:
                cpu = cell["us_per_op_cpu"]
                text += f"<br>CPU {cpu['median']:.1f} us/op ({cpu['min']:.1f}-{cpu['max']:.1f})"
            if "max_busy_ms" in cell:
                busy = cell["max_busy_ms"]
                text += f"<br>CPU-time stall {busy['median']:.1f} ms ({busy['min']:.1f}-{busy['max']:.1f})"
            if "full_collections" in cell:
                full, worst = cell["full_collections"], cell["full_collection_max_ms"]
                text += (
                    f"<br>full GCs {full['min']:.0f}-{full['max']:.0f}, longest "
                    f"{worst['median']:.1f} ms ({worst['min']:.1f}-{worst['max']:.1f})"
                )
            if "max_outside_full_gc_ms" in cell:
                other = cell["max_outside_full_gc_ms"]
                text += (
                    f"<br>worst stall without a full GC {other['median']:.1f} ms "
                    f"({other['min']:.1f}-{other['max']:.1f})"
                )
            for label, ratio in cell.get("ratios", {}).items():
                text += (
                    f"<br>{ratio['of_medians']:.2f}x {label[3:]} "
                    f"({ratio['min']:.2f}-{ratio['max']:.2f})"
                )
            cells.append(text)
        lines.append(f"| {workload} | {figure} | " + " | ".join(cells) + " |")
    for name in PEERS:
        if name in result["summary"]:
            cell = result["summary"][name]["peer"]
            cpu = [r["us_per_op_cpu"] for r in result["runs"][name]["peer"] if "us_per_op_cpu" in r]
            lines.append(
                f"\npeer {name}: {cell['median']:,.0f} ops/s ({cell['min']:,.0f}-{cell['max']:,.0f}); "
                f"CPU {min(cpu):.1f}-{max(cpu):.1f} us/op"
                if cpu
                else f"\npeer {name}: {cell['median']:,.0f} ops/s ({cell['min']:,.0f}-{cell['max']:,.0f})"
            )
    lines.append(
        f"\nload average {result['machine'].get('load_average_start')} at the start, "
        f"{result.get('load_average_end')} at the end; {result['elapsed_seconds']} s"
    )
    for venv, info in result["venvs"].items():
        build = info.get("build") or {}
        compiled = ", ".join(build.get("compiled", [])) or "none"
        lines.append(
            f"\n{venv}: {build.get('package_file')} (version {build.get('version')}); "
            f"compiled: {compiled}"
        )
    return "\n".join(lines)


def run(
    venvs: dict[str, str],
    figures: dict[str, tuple[dict[str, Any], str, bool]],
    repeats: int,
    *,
    with_peers: bool = True,
    log: Any = None,
) -> dict[str, Any]:
    def say(text: str) -> None:
        if log is not None:
            print(text, file=log, flush=True)

    peer_names = [
        name for name in PEERS if with_peers and (name != "official" or peers.official_available())
    ]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    builds: dict[str, Any] = {}
    order = list(venvs)
    machine = machine_info()
    started = time.perf_counter()
    with isolated_benchmarks() as where, sink_process() as (url, _sink):
        for repeat in range(repeats):
            rotated = order[repeat % len(order) :] + order[: repeat % len(order)]
            for workload, (params, _figure, _higher) in figures.items():
                for venv in rotated:
                    spec = {"workload": _workload_of(workload), "base_url": url, "params": params}
                    result = run_child(venvs[venv], spec, where)
                    result["repeat"] = repeat + 1
                    runs.setdefault(workload, {}).setdefault(venv, []).append(result)
                    if "build" in result:
                        builds[venv] = result["build"]
                    say(f"[{repeat + 1}] {workload:<24} {venv:<10} {_brief(result, _figure)}")
            for name in peer_names:
                params = dict(PEERS[name][0])
                params["ops"] = figures.get("new_users", ({"ops": params["ops"]},))[0]["ops"]
                spec = {"workload": name, "base_url": url, "params": params}
                result = run_child(sys.executable, spec, where)
                result["repeat"] = repeat + 1
                runs.setdefault(name, {}).setdefault("peer", []).append(result)
                say(f"[{repeat + 1}] {name:<24} {'peer':<10} {_brief(result, 'ops_per_second')}")
    base = order[0] if len(order) > 1 else None
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.compare " + " ".join(sys.argv[1:]),
        "repeats": repeats,
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "venvs": {name: {"python": venvs[name], "build": builds.get(name)} for name in order},
        "base": base,
        "summary": summarise(runs, {**figures, **PEERS}, base),
        "runs": runs,
    }


def _brief(result: dict[str, Any], figure: str) -> str:
    if "error" in result:
        return "ERROR " + result["error"]
    value = _get(result, figure)
    text = f"{figure} {value:,.1f}" if value is not None else ""
    busy = _get(result, "loop_stall.max_busy_ms")
    if busy is not None:
        text += f" (busy {busy:.1f} ms)"
    ids = _get(result, "identifications_per_op")
    if ids is not None:
        text += f", {ids} identifications/op"
    return text


def parse_venvs(items: list[str]) -> dict[str, str]:
    venvs: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--venv wants NAME=PATH, got {item!r}")
        if name in venvs:
            raise SystemExit(f"--venv {name} given twice")
        venvs[name] = python_of(path)
    return venvs or {"this": sys.executable}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--venv", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument(
        "--only", help=f"comma-separated workloads ({', '.join(FULL)})", default=None
    )
    parser.add_argument("--no-peers", action="store_true", help="skip the raw loop and the SDK")
    parser.add_argument("--json", help="write everything here")
    parser.add_argument(
        "--otel",
        choices=("metrics", "traces"),
        help="every workload with the OpenTelemetry SDK's MeterProvider installed "
        "(traces: its TracerProvider too); needs opentelemetry-sdk in each venv",
    )
    args = parser.parse_args(argv)
    venvs = parse_venvs(args.venv)
    figures = dict(FULL)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = sorted(set(wanted) - set(FULL))
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(unknown)}")
        figures = {w: FULL[w] for w in wanted}
    repeats = args.repeats
    if args.quick:
        repeats = 1
        figures = {
            name: ({**params, **{k: v for k, v in QUICK_OPS.items() if k in params}}, f, h)
            for name, (params, f, h) in figures.items()
        }
    if args.otel:
        figures = {
            name: ({**params, "otel": args.otel}, f, h) for name, (params, f, h) in figures.items()
        }
    result = run(venvs, figures, repeats, with_peers=not args.no_peers, log=sys.stderr)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    errors = sum(
        1
        for per_venv in result["runs"].values()
        for rs in per_venv.values()
        for r in rs
        if "error" in r
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
