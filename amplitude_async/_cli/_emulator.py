"""``amplitude-async emulator``: serve the local Amplitude emulator until Ctrl-C/SIGTERM.

A thin front for ``python -m amplitude_async.emulator``: the flags are handed on to the
emulator's own command, so both accept the same things and validate them in one place.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]

_PROFILES = "User Profile API (defined before the first request; repeatable)"

_HELP = """Run a local Amplitude (Identify, HTTP V2, Batch and User Profile APIs) on 127.0.0.1.

It applies identify operations with Amplitude's documented semantics, answers 429 naming
users past --eps-threshold identifications per second, and can inject faults. Serves until
Ctrl-C or SIGTERM. Inspect it at http://HOST:PORT/_emulator/stats.

Cohorts, recommendation models, computations and predictions for the User Profile API come from flags or a JSON file (--definitions).

Example:

  amplitude-async emulator --port 8787 --api-key demo-key --secret-key demo-secret --recommendation rec-model-1=sku-1,sku-2,sku-3 --cohort pro-users:plan=pro

  AMPLITUDE_SERVER_URL=http://127.0.0.1:8787/identify AMPLITUDE_API_KEY=demo-key amplitude-async identify --user-id user-1 --set plan=pro
"""


def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8787,
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless --allow-remote.")
    ] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(help="Allow a non-loopback --host (the emulator has no real auth)."),
    ] = False,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key", show_default=False, help="Accepted API key (repeatable; default: any)."
        ),
    ] = None,
    secret_key: Annotated[
        str | None,
        typer.Option(show_default=False, help="Profile API secret key (default: any key)."),
    ] = None,
    eps_threshold: Annotated[
        int,
        typer.Option(
            min=0, help="Identifications per second per user/device before 429 (0: never)."
        ),
    ] = 30,
    daily_quota: Annotated[
        int | None,
        typer.Option(min=1, show_default=False, help="Identifications per identity per day."),
    ] = None,
    min_id_length: Annotated[int, typer.Option(min=1, help="Shortest id accepted.")] = 5,
    fault_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fraction of requests faulted: 503, 5xx after applying, connection reset.",
        ),
    ] = 0.0,
    latency: Annotated[float, typer.Option(min=0.0, help="Seconds added to each request.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the random faults.")] = 0,
    definitions: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            show_default=False,
            help="JSON file of cohorts, recommendations, computations and predictions "
            "(see docs/emulator.md).",
            rich_help_panel=_PROFILES,
        ),
    ] = None,
    cohort: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ID:PROP=VALUE[,...]",
            show_default=False,
            help="A cohort of the users whose properties equal these, e.g. pro-users:plan=pro.",
            rich_help_panel=_PROFILES,
        ),
    ] = None,
    recommendation: Annotated[
        list[str] | None,
        typer.Option(
            metavar="REC_ID=ITEM,...",
            show_default=False,
            help="A recommendation model over these items, e.g. rec-model-1=sku-1,sku-2.",
            rich_help_panel=_PROFILES,
        ),
    ] = None,
    computation: Annotated[
        list[str] | None,
        typer.Option(
            metavar="COMP_ID=PROPERTY",
            show_default=False,
            help="A computation: the value of a user property, e.g. seats=seats.",
            rich_help_panel=_PROFILES,
        ),
    ] = None,
    prediction: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PREDICTION_ID",
            show_default=False,
            help="A prediction with a stable per-user score.",
            rich_help_panel=_PROFILES,
        ),
    ] = None,
) -> None:
    from ..emulator._command import main as serve_main

    argv = [
        "--host",
        host,
        "--port",
        str(port),
        "--eps-threshold",
        str(eps_threshold),
        "--min-id-length",
        str(min_id_length),
        "--fault-rate",
        repr(fault_rate),
        "--latency",
        repr(latency),
        "--seed",
        str(seed),
    ]
    if allow_remote:
        argv.append("--allow-remote")
    for key in api_key or ():
        argv += ["--api-key", key]
    if secret_key is not None:
        argv += ["--secret-key", secret_key]
    if daily_quota is not None:
        argv += ["--daily-quota", str(daily_quota)]
    if definitions is not None:
        argv += ["--definitions", definitions]
    for flag, values in (
        ("--cohort", cohort),
        ("--recommendation", recommendation),
        ("--computation", computation),
        ("--prediction", prediction),
    ):
        for value in values or ():
            argv += [flag, value]
    code = serve_main(argv)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(help=_HELP, no_args_is_help=False)(emulator)
