"""``amplitude-async bench``: the side-by-side benchmark suite (what ``make bench`` runs).

The suite lives in ``benchmarks/`` of the source checkout, not in the installed package:
it needs the official SDK and matplotlib (the ``bench`` extra) and starts its own server
and client processes. This command finds the checkout (the editable install's, or the
current directory) and runs ``python -m benchmarks`` there with the same interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

_HELP = (
    "Run the benchmark suite: amplitude-async, a raw aiohttp + msgspec loop and the "
    "official amplitude-analytics SDK against one local server, in one run.\n\n"
    "Scenarios: throughput, identify() latency and event-loop stalls, memory per queued "
    "operation, head-of-line blocking under 429s. Writes latest.json, latest.md and "
    "latest.png to benchmarks/results/ (or --out). A full run takes a few minutes; "
    "--smoke takes seconds. Needs a source checkout with the bench extra: "
    "pip install -e '.\\[bench]'.\n\n"
    "Example:\n\n"
    "  amplitude-async bench --smoke --out /tmp/bench"
)


def _checkout() -> Path | None:
    """The source checkout holding benchmarks/suite.py, if any."""
    here = Path(__file__).resolve().parents[2]  # <root>/amplitude_async/_cli/_bench.py
    for root in (here, Path.cwd()):
        if (root / "benchmarks" / "suite.py").is_file():
            return root
    return None


def bench(
    smoke: Annotated[
        bool, typer.Option(help="Tiny sizes and one repeat: seconds instead of minutes.")
    ] = False,
    repeats: Annotated[
        int | None, typer.Option(min=1, show_default=False, help="Runs of each contender (3).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Comma-separated scenarios: throughput, caller_cost, memory, head_of_line.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(show_default=False, help="Directory for the results (benchmarks/results)."),
    ] = None,
    chart: Annotated[bool, typer.Option(help="Draw latest.png (needs matplotlib).")] = True,
) -> None:
    root = _checkout()
    if root is None:
        typer.echo(
            "error: the benchmark suite ships with the source checkout, not the package; "
            "clone the repository and run 'make bench' (or this command) inside it",
            err=True,
        )
        raise typer.Exit(2)
    argv = [sys.executable, "-m", "benchmarks"]
    if smoke:
        argv.append("--smoke")
    if repeats is not None:
        argv += ["--repeats", str(repeats)]
    if only:
        argv += ["--only", only]
    if out is not None:
        argv += ["--out", str(out.resolve())]
    if not chart:
        argv.append("--no-chart")
    code = subprocess.call(argv, cwd=root)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(help=_HELP, no_args_is_help=False)(bench)
