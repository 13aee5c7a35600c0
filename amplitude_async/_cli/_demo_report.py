"""What the demo prints: the users it read back and the summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from ._demo import DemoResult

__all__ = ["print_report", "report_json"]


def report_json(result: DemoResult) -> dict[str, Any]:
    stats, workload = result.stats, result.workload
    return {
        "ok": result.ok,
        "operations": len(workload.ops),
        "users": len(workload.users),
        "hot_users": len(workload.hot_users),
        "kinds": workload.kinds,
        "outcomes": dict(result.outcomes),
        "delivered": stats.delivered,
        "failed": stats.failed,
        "requests": stats.requests,
        "identifications": stats.identifications,
        "ops_per_identification": round(stats.operations_per_identification, 3),
        "throttle_responses": stats.throttle_responses,
        "retried": stats.retried,
        "ops_per_second": round(len(workload.ops) / result.send_seconds, 1),
        "send_seconds": round(result.send_seconds, 3),
        "total_seconds": round(result.total_seconds, 3),
        "emulator_applied": result.emulator.applied,
        "emulator_throttled_requests": result.emulator.throttled_requests,
        "timed_out": result.timed_out,
        "users_checked": len(workload.expected),
        "users_mismatched": result.mismatched[:20],
        "profiles": [p.user_id for p in result.profiles],
    }


def print_report(result: DemoResult, console: Console) -> None:
    from rich.table import Table

    from ._profile import render_profile

    if result.profiles:
        console.print("[bold]Read back through the User Profile API[/bold]")
        for found in result.profiles:
            console.print(render_profile(found))
    stats, workload = result.stats, result.workload
    ops = len(workload.ops)
    table = Table(title="amplitude-async demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(workload.kinds.items()))
    table.add_row(
        "workload",
        f"{ops:,} operations over {len(workload.users):,} users "
        f"({len(workload.hot_users)} hot users)",
    )
    table.add_row("operation kinds", kinds)
    table.add_row("delivered", f"[green]{stats.delivered:,}[/green]")
    failed = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.failed.items())) or "none"
    table.add_row("failed, by reason", failed if failed == "none" else f"[red]{failed}[/red]")
    table.add_row("HTTP requests", f"{stats.requests:,}")
    table.add_row("identifications sent", f"{stats.identifications:,}")
    table.add_row(
        "coalescing",
        f"{stats.operations_per_identification:.2f} operations per identification",
    )
    table.add_row(
        "429 answers (throttled)",
        f"{stats.throttle_responses:,} ({stats.retried:,} operations re-sent)",
    )
    table.add_row("ops/s", f"{ops / result.send_seconds:,.0f}")
    table.add_row(
        "wall time",
        f"{result.send_seconds:.2f} s sending, {result.total_seconds:.2f} s in all",
    )
    checked = len(workload.expected)
    if result.mismatched:
        shown = ", ".join(result.mismatched[:5])
        state = f"[red]{len(result.mismatched):,} of {checked:,} users differ[/red] ({shown})"
    else:
        state = f"[green]all {checked:,} users as expected[/green]"
    table.add_row("emulator state", state)
    outcomes = sum(result.outcomes.values())
    table.add_row(
        "outcomes",
        f"{outcomes:,} of {ops:,}" + ("" if outcomes == ops else " [red](missing)[/red]"),
    )
    console.print(table)
    if result.timed_out:
        console.print(
            "[red]timed out[/red]: some operations had no outcome before --timeout; "
            "they failed with reason shutdown"
        )
    console.print("[green]OK[/green]" if result.ok else "[red]FAILED[/red]")
