"""``amplitude-async profile``: read one user back through the User Profile API."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ._settings import ProfileTarget, ProfileUrlOption, SecretKeyOption, profile_target

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from .. import UserProfile

__all__ = ["register", "render_profile"]

_HELP = """Look up a user (or a device) through Amplitude's User Profile API and print it.

Without --props, --cohorts or --recs, user properties and cohorts are shown.

--timeout (default 10 s) bounds the whole lookup, retries included.

Exit codes: 0 found, 1 error (secret key refused, server unreachable, no answer within --timeout), 2 bad arguments, 3 user not found.

Example:

  AMPLITUDE_SECRET_KEY=... amplitude-async profile user-1 --props --cohorts --recs rec-home
"""

EXIT_NOT_FOUND = 3


def profile(
    user_id: Annotated[
        str | None,
        typer.Argument(metavar="USER_ID", show_default=False, help="The user id to look up."),
    ] = None,
    device_id: Annotated[
        str | None, typer.Option(help="Look up a device id instead of a user id.")
    ] = None,
    props: Annotated[bool, typer.Option("--props", help="Show user properties.")] = False,
    cohorts: Annotated[bool, typer.Option("--cohorts", help="Show cohort ids.")] = False,
    recs: Annotated[
        list[str] | None,
        typer.Option("--recs", metavar="REC_ID", help="Show this recommendation (repeatable)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Recommendations per --recs, at most.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds to wait for an answer, retries included."),
    ] = 10.0,
    secret_key: SecretKeyOption = None,
    server_url: ProfileUrlOption = None,
) -> None:
    if user_id is None and device_id is None:
        raise typer.BadParameter(
            "no one to look up: give a USER_ID (amplitude-async profile user-1) or --device-id"
        )
    if user_id is not None and device_id is not None:
        raise typer.BadParameter("give a USER_ID or --device-id, not both")
    target = profile_target(secret_key, server_url)
    if not (props or cohorts or recs):
        props = cohorts = True
    import anyio

    from .. import APIStatusError, ConfigurationError, TransportError, UserNotFound

    err = _stderr()
    try:
        found = anyio.run(
            _lookup, target, user_id, device_id, props, cohorts, recs or [], limit, timeout
        )
    except TimeoutError:
        where = target.server_url or "the User Profile API"
        err.print(
            f"[red]error[/red]: no answer from {where} within --timeout {timeout:g} s "
            "(unreachable, or failing and retried)"
        )
        raise typer.Exit(1) from None
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server-url") from None
    except UserNotFound:
        who = f"user {user_id!r}" if user_id is not None else f"device {device_id!r}"
        err.print(f"[yellow]not found[/yellow]: {who} has not been seen by Amplitude")
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except (APIStatusError, TransportError) as exc:
        # Messages of the SDK's errors never carry the secret key.
        err.print(f"[red]error[/red]: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    if json_output:
        import msgspec

        sys.stdout.write(msgspec.json.encode(found).decode() + "\n")
        return
    from rich.console import Console

    Console(highlight=False).print(render_profile(found))


async def _lookup(
    target: ProfileTarget,
    user_id: str | None,
    device_id: str | None,
    props: bool,
    cohorts: bool,
    recs: list[str],
    limit: int | None,
    wait: float,
) -> UserProfile:
    import anyio

    from .. import ProfileClient

    client = ProfileClient(
        target.secret_key,
        server_url=target.server_url,
        timeout=min(5.0, wait),
        retry_base=min(0.1, wait / 8),
        retry_cap=min(2.0, wait / 4),
        # Give up retrying a little before the deadline, so that a server that keeps
        # failing ends with its last error rather than a bare timeout.
        retry_deadline=wait * 0.8,
    )
    with anyio.fail_after(wait):
        async with client as profiles:
            return await profiles.get(
                user_id,
                device_id=device_id,
                amp_props=props or None,
                cohort_ids=cohorts or None,
                rec_id=recs or None,
                limit=limit,
            )


def render_profile(found: UserProfile, *, title: str | None = None) -> RenderableType:
    """A rich renderable of a profile: ids, properties, cohorts, recommendations."""
    import json

    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    parts: list[RenderableType] = []
    if found.amp_props is not None:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("property")
        table.add_column("value", overflow="fold")
        for name, value in sorted(found.amp_props.items()):
            table.add_row(name, json.dumps(value, ensure_ascii=False))
        if not found.amp_props:
            table.add_row("(none)", "")
        parts.append(table)
    if found.cohort_ids is not None:
        parts.append(f"[bold]cohorts[/bold]: {', '.join(found.cohort_ids) or '(none)'}")
    for rec in found.recommendations or ():
        label = rec.title or rec.rec_id or "recommendation"
        items = ", ".join(rec.items or []) or "(none)"
        control = " (control group)" if rec.is_control else ""
        parts.append(f"[bold]{label}[/bold]{control}: {items}")
    heading = title or (
        f"user {found.user_id}" if found.user_id else f"device {found.device_id or '?'}"
    )
    if found.amplitude_id is not None:
        heading += f"  (amplitude_id {found.amplitude_id})"
    return Panel(Group(*parts), title=heading, title_align="left", expand=False)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    # No help page for no arguments: the error says what is missing.
    app.command(help=_HELP, no_args_is_help=False)(profile)
