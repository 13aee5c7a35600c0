"""The suite's outputs: ``latest.json`` (everything), ``latest.md`` (the table) and
``latest.png`` (the chart; needs matplotlib, the ``bench`` extra).

    python -m benchmarks.report benchmarks/results/latest.json   # redraw the table and chart
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CONTENDER_NAMES = {
    "amplitude_async": "amplitude-async",
    "amplitude_async_no_coalesce": "amplitude-async, coalesce=False",
    "raw_loop": "raw aiohttp + msgspec loop",
    "raw_http": "raw loop, bodies pre-encoded (HTTP only)",
    "official_sdk": "official amplitude-analytics",
}


def write(result: dict[str, Any], out: Path, *, chart: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "latest.json", out / "latest.md"]
    paths[0].write_text(json.dumps(result, indent=1) + "\n")
    paths[1].write_text(markdown(result))
    if chart:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            result.setdefault("notes", []).append("no chart: matplotlib is not installed")
        else:
            png = out / "latest.png"
            draw(result, png)
            paths.append(png)
    return paths


# -- formatting -------------------------------------------------------------------------------


def _fig(scen: dict[str, Any], contender: str, path: str) -> dict[str, float] | None:
    figure: dict[str, float] | None = scen.get(contender, {}).get(path)
    return figure


def _num(value: float, digits: int = 0) -> str:
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _mm(figure: dict[str, float] | None, digits: int = 0, unit: str = "") -> str:
    """'median (min-max)'."""
    if figure is None:
        return "-"
    med, lo, hi = (_num(figure[k], digits) for k in ("median", "min", "max"))
    if lo == hi:
        return f"{med}{unit}"
    return f"{med}{unit} ({lo}-{hi})"


def _ratio(result: dict[str, Any], name: str) -> str:
    r = result.get("ratios", {}).get(name)
    if r is None:
        return "-"
    text = f"{r['value']:.2f}x"
    rng = r.get("per_repeat")
    if rng and rng["min"] != rng["max"]:
        text += f" ({rng['min']:.2f}-{rng['max']:.2f})"
    if r.get("cpu_per_op_ratio") is not None:
        text += f"; in CPU per op {r['cpu_per_op_ratio']:.2f}x"
    return text


USER_LABELS = {
    "new_users": "every op a new user",
    "per_user_5": "5 ops per user, queued at once",
    "per_user_5_no_coalesce": "the same, coalesce=False",
    "service": "one op per loop turn (a service)",
}


def _user_workloads(result: dict[str, Any]) -> list[str]:
    """The acceptance table: the Identify built in the loop, each workload as a ratio."""
    u = result["scenarios"].get("user_workloads", {})
    st = result["scenarios"].get("stall", {})
    if not u and not st:
        return []
    sizes = result["sizes"]
    lines = [
        f"**User workloads** ({sizes['user_ops']:,} ops, the Identify built in the loop, "
        "batch_max_items=1000, flush_interval=0.05, max_in_flight=4; "
        "benchmarks/workloads.py):",
        "",
        "| workload | ops/s | CPU us/op | identifications/op | vs raw loop | vs official SDK |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in USER_LABELS.items():
        if name not in u:
            continue
        lines.append(
            f"| {label} | {_mm(_fig(u, name, 'ops_per_second'))} "
            f"| {_mm(_fig(u, name, 'us_per_op_cpu'), 2)} "
            f"| {_mm(_fig(u, name, 'identifications_per_op'), 2)} "
            f"| {_ratio(result, name + '_vs_raw_loop')} "
            f"| {_ratio(result, name + '_vs_official_sdk')} |"
        )
    for name, label in (
        ("raw_loop", "raw aiohttp + msgspec loop"),
        ("official_sdk", "official SDK"),
    ):
        if name in u:
            lines.append(
                f"| {label} | {_mm(_fig(u, name, 'ops_per_second'))} "
                f"| {_mm(_fig(u, name, 'us_per_op_cpu'), 2)} | - | - | - |"
            )
    for name, users in (
        ("users_20k", sizes["stall_users_many"]),
        ("users_2k", sizes["stall_users_few"]),
    ):
        if name in st:
            lines.append(
                f"| worst loop stall, {sizes['stall_ops']:,} burst, {users:,} users, "
                f"yield every 100 (1 ms ticker), ms wall / CPU "
                f"| {_mm(_fig(st, name, 'loop_stall.max_ms'), 1)} / "
                f"{_mm(_fig(st, name, 'loop_stall.max_busy_ms'), 1)} | - | - | - | - |"
            )
    return lines


def markdown(result: dict[str, Any]) -> str:
    s = result["scenarios"]
    m = result["machine"]
    sizes = result["sizes"]
    pin = result.get("pinning", {})
    cal = result["calibration"]
    official_version = m["packages"].get("amplitude-analytics") or "not installed"
    lines = [
        f"# amplitude-async benchmark, {result['date']}",
        "",
        f"{m['cpu_model']}, {m['cpus']} CPUs, {m['python']}, {m['platform']}; "
        f"amplitude-async {m['packages'].get('amplitude-async')} "
        f"(git {m['git'].get('commit')}{', dirty' if m['git'].get('dirty') else ''}), "
        f"aiohttp {m['packages'].get('aiohttp')}, msgspec {m['packages'].get('msgspec')}, "
        f"official SDK amplitude-analytics {official_version}. Build: "
        + (
            "compiled (" + ", ".join(result["build"]["compiled"]) + ")"
            if result.get("build", {}).get("compiled")
            else "pure Python"
        )
        + ".",
        "",
        f"Server: one lean parsing sink in its own process"
        f"{' pinned to CPU ' + str(pin.get('server_cpu')) if pin.get('server_pinned') else ' (not pinned)'}; "
        f"each run in a fresh process"
        f"{' pinned to CPU ' + str(pin.get('client_cpu')) if pin.get('client_pinned') else ' (not pinned)'}. "
        f"{sizes['repeats']} run(s) each, interleaved; median (min-max). Host calibration "
        f"{cal['start']['best_ms']} ms at the start, {cal.get('end', {}).get('best_ms', '-')} ms "
        f"at the end (a fixed pure-Python loop; lower is faster); load average "
        f"{m.get('load_average_start')} -> {m.get('load_average_end')}. "
        f"`{result['command'].strip()}`, {result.get('elapsed_seconds', '-')} s.",
        "",
        "| | amplitude-async | raw aiohttp + msgspec loop | official amplitude-analytics |",
        "|---|---|---|---|",
    ]
    lines[-2:-2] = [*_user_workloads(result), ""]
    t = s.get("throughput", {})
    c = s.get("caller_cost", {})
    lines.append(
        f"| **1. throughput**, ops/s delivered ({sizes['throughput_ops']:,} ops, "
        f"{sizes['throughput_users']:,} users; official: {sizes['official_ops']:,} ops) "
        f"| {_mm(_fig(t, 'amplitude_async', 'ops_per_second'))} "
        f"| {_mm(_fig(t, 'raw_loop', 'ops_per_second'))} "
        f"| {_mm(_fig(t, 'official_sdk', 'ops_per_second'))} |"
    )
    lines.append(
        f"| client CPU, ms per 1,000 ops "
        f"| {_mm(_fig(t, 'amplitude_async', 'cpu_ms_per_1000_ops'), 2)} "
        f"| {_mm(_fig(t, 'raw_loop', 'cpu_ms_per_1000_ops'), 2)} "
        f"| {_mm(_fig(t, 'official_sdk', 'cpu_ms_per_1000_ops'), 1)} |"
    )

    def busy(contender: str) -> str:
        client = _fig(t, contender, "client_busy")
        server = _fig(t, contender, "server_busy")
        if client is None or server is None:
            return "-"
        return f"{client['median']:.2f} / {server['median']:.2f}"

    lines.append(
        "| CPU / wall time of the client / of the server (near 1: that side set the pace; "
        "a CPU-bound client well under 1: the host was shared) "
        f"| {busy('amplitude_async')} | {busy('raw_loop')} | {busy('official_sdk')} |"
    )
    for label, key in (("p50", "p50"), ("p99", "p99"), ("p99.9", "p999")):
        bold = "**2. caller cost**: " if key == "p50" else ""
        lines.append(
            f"| {bold}identify() {label}, us (pipeline busy) "
            f"| {_mm(_fig(c, 'amplitude_async', 'identify_us.' + key), 2)} | - "
            f"| {_mm(_fig(c, 'official_sdk', 'identify_us.' + key), 1)} |"
        )
    lines.append(
        f"| worst event-loop stall, ms, in the process's own CPU time (1 ms ticker) "
        f"| {_mm(_fig(c, 'amplitude_async', 'loop_stall.max_busy_ms'), 1)} | - "
        f"| {_mm(_fig(c, 'official_sdk', 'loop_stall.max_busy_ms'), 1)} |"
    )
    lines.append(
        f"| the same in wall-clock time (also counts the OS descheduling the process) "
        f"| {_mm(_fig(c, 'amplitude_async', 'loop_stall.max_ms'), 1)} | - "
        f"| {_mm(_fig(c, 'official_sdk', 'loop_stall.max_ms'), 1)} |"
    )
    mem = s.get("memory", {})
    lines.append(
        f"| **3. memory**, bytes per queued op ({sizes['memory_ops']:,} queued, server silent) "
        f"| {_mm(_fig(mem, 'amplitude_async', 'bytes_per_op'))} "
        f"(client's own {_mm(_fig(mem, 'amplitude_async', 'client_bytes_per_op'))}) | - | - |"
    )
    lines.append(f"| peak RSS, MB | {_mm(_fig(mem, 'amplitude_async', 'peak_rss_mb'))} | - | - |")
    h = s.get("head_of_line", {})
    base = _mm(_fig(h, "baseline", "cold_ops_per_second"))
    lines.append(
        f"| **4. head-of-line**: ops/s of the other 95% of users, 5% hot users throttled "
        f"(429) / not, throttle_hold {sizes['hol_hold'] or 15:g} s "
        f"({sizes['hol_ops']:,} ops, {sizes['hol_users']:,} users) "
        f"| {_mm(_fig(h, 'throttled', 'cold_ops_per_second'))} / {base} "
        f"= {_ratio(result, 'head_of_line')} | - | - |"
    )
    lines.append(
        f"| the same, throttle_hold {sizes['hol_short_hold']:g} s (hot users refused "
        f"again and again) "
        f"| {_mm(_fig(h, 'throttled_short_hold', 'cold_ops_per_second'))} / {base} "
        f"= {_ratio(result, 'head_of_line_short_hold')} | - | - |"
    )
    bad = [
        _fig(h, c, path)
        for c in ("throttled", "throttled_short_hold")
        for path in ("sequence_violations", "hot_users_out_of_sequence")
    ]
    shown = [f for f in bad if f is not None]
    total_bad = f"{sum(f['max'] for f in shown):.0f}" if shown else "-"
    lines.append(
        f"| hot users' operations out of order or missing (worst run) | {total_bad} | - | - |"
    )
    lines += [
        "",
        f"Ratios: throughput vs the raw loop {_ratio(result, 'throughput_vs_raw_loop')}; "
        f"vs the official SDK {_ratio(result, 'throughput_vs_official_sdk')}; "
        f"identify() p99, official / ours {_ratio(result, 'identify_p99_official_over_ours')}. "
        "(Ranges: the per-repeat ratios. CPU per op: the peer's CPU per operation over "
        "ours, which a shared host disturbs less.)",
        "",
        "Also measured: "
        f"amplitude-async with coalescing off {_mm(_fig(t, 'amplitude_async_no_coalesce', 'ops_per_second'))} ops/s; "
        f"the raw loop with bodies encoded beforehand (HTTP and the sink only) "
        f"{_mm(_fig(t, 'raw_http', 'ops_per_second'))} ops/s.",
        "",
        "## Targets (ratios from this run)",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    for row in result.get("targets", []):
        value = row["value"]
        shown = "-" if value is None else f"{value:g}"
        if "wall_clock_ms" in row:
            shown += f" (wall clock {row['wall_clock_ms']:g})"
        verdict = (
            "not measured"
            if row["met"] is None
            else ("met" if row["met"] else f"missed: {row['by']}")
        )
        lines.append(f"| {row['what']} {row['target']} | {shown} | {verdict} |")
    notes = [row for row in result.get("targets", []) if row.get("note")]
    if notes:
        lines += ["", "Why the missed targets are missed:", ""]
        lines += [f"- **{row['name']}**: {row['note']}" for row in notes]
    if result.get("errors"):
        lines += ["", f"**{result['errors']} run(s) failed**; see latest.json."]
    return "\n".join(lines) + "\n"


# -- the chart ---------------------------------------------------------------------------------


def draw(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["scenarios"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    m = result["machine"]
    fig.suptitle(
        f"amplitude-async benchmark, {result['date']}: {m['cpu_model']}, {m['cpus']} CPUs, "
        f"{m['python']} (median, bars: min-max of {result['sizes']['repeats']} runs)",
        fontsize=10,
    )

    from matplotlib.ticker import FuncFormatter

    def bars(
        ax: Any,
        labels: list[str],
        figures: list[dict[str, float] | None],
        color: Any,
        *,
        log: bool = False,
    ) -> None:
        shown = [(lab, f) for lab, f in zip(labels, figures, strict=True) if f is not None]
        if not shown:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
            return
        names = [lab for lab, _ in shown]
        med = [f["median"] for _, f in shown]
        err = [
            [f["median"] - f["min"] for _, f in shown],
            [f["max"] - f["median"] for _, f in shown],
        ]
        rects = ax.barh(names, med, xerr=err, color=color, capsize=3)
        ax.invert_yaxis()
        for rect, (_, figure) in zip(rects, shown, strict=True):
            value = figure["median"]
            ax.annotate(
                f"{value:,.0f}" if value >= 100 else f"{value:.1f}",
                # Right of the error bar, so the two never overlap.
                (figure["max"], rect.get_y() + rect.get_height() / 2),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        top = max(f["max"] for _, f in shown)
        if log:
            ax.set_xscale("log")
            ax.set_xlim(right=top * 6)
        else:
            ax.set_xlim(0, top * 1.22)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))

    t = s.get("throughput", {})
    order = [
        "raw_http",
        "raw_loop",
        "amplitude_async",
        "amplitude_async_no_coalesce",
        "official_sdk",
    ]
    ax = axes[0][0]
    bars(
        ax,
        [CONTENDER_NAMES[k] for k in order],
        [_fig(t, k, "ops_per_second") for k in order],
        ["#bbbbbb", "#888888", "#1f77b4", "#6baed6", "#d62728"],
    )
    ax.set_title("1. throughput: operations delivered per second", fontsize=10)
    ax.set_xlabel("ops/s (higher is better)")

    c = s.get("caller_cost", {})
    ax = axes[0][1]
    labels, figures, colors = [], [], []
    for key, name, color in (
        ("amplitude_async", "amplitude-async", "#1f77b4"),
        ("official_sdk", "official SDK", "#d62728"),
    ):
        for pct in ("p50", "p99", "p999"):
            labels.append(f"{name} {pct.replace('p999', 'p99.9')}")
            figures.append(_fig(c, key, "identify_us." + pct))
            colors.append(color)
    bars(ax, labels, figures, colors, log=True)
    ax.set_title("2. identify() latency while the pipeline is busy", fontsize=10)
    ax.set_xlabel("microseconds, log scale (lower is better)")

    h = s.get("head_of_line", {})
    ax = axes[1][1]
    sizes = result["sizes"]
    bars(
        ax,
        [
            "no throttling",
            f"5% throttled, hold {sizes['hol_hold'] or 15:g} s",
            f"5% throttled, hold {sizes['hol_short_hold']:g} s",
        ],
        [
            _fig(h, "baseline", "cold_ops_per_second"),
            _fig(h, "throttled", "cold_ops_per_second"),
            _fig(h, "throttled_short_hold", "cold_ops_per_second"),
        ],
        ["#1f77b4", "#ff7f0e", "#fdae6b"],
    )
    ax.set_title("4. head-of-line: the other 95%'s ops/s (target 0.9x)", fontsize=10)
    ax.set_xlabel("ops/s (higher is better)")

    mem = s.get("memory", {})
    ax = axes[1][0]
    total = _fig(mem, "amplitude_async", "bytes_per_op")
    own = _fig(mem, "amplitude_async", "client_bytes_per_op")
    if total is not None and own is not None:
        op_part = total["median"] - own["median"]
        ax.barh(
            ["per queued operation"], [op_part], height=0.5, color="#9ecae1", label="the Identify"
        )
        ax.barh(
            ["per queued operation"],
            [own["median"]],
            height=0.5,
            left=[op_part],
            color="#1f77b4",
            label="the client's receipt, lane, queue",
        )
        ax.axvline(400, color="#d62728", linestyle="--", label="target: under 400 B")
        ax.annotate(
            f"{total['median']:,.0f} B", (total["median"], 0), xytext=(4, 0),
            textcoords="offset points", va="center", fontsize=8,
        )  # fmt: skip
        ax.set_ylim(-0.6, 1.4)
        ax.legend(fontsize=8, loc="upper right")
    else:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
    ax.set_title(
        f"3. memory: {result['sizes']['memory_ops']:,} operations queued, server silent",
        fontsize=10,
    )
    ax.set_xlabel("bytes (lower is better)")
    ax.set_xlim(0, max(500, (total or {"median": 0})["median"] * 1.25))

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Rewrite latest.md and latest.png next to a result file, from its data."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "benchmarks/results/latest.json")
    result = json.loads(path.read_text())
    (path.parent / "latest.md").write_text(markdown(result))
    draw(result, path.parent / "latest.png")


if __name__ == "__main__":
    main()
