"""``amplitude-async identify``: send one identify operation built from flags."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._settings import (
    ApiKeyOption,
    IdentifyTarget,
    ServerUrlOption,
    ServerZoneOption,
    Zone,
    identify_target,
)
from ._values import parse_pair, parse_value

if TYPE_CHECKING:
    from .. import Identify, Outcome

__all__ = ["register"]

_HELP = """Send one identify operation and print its outcome; exit 1 if it was not delivered.

Values are parsed as JSON where they parse (1, true, ["a","b"]) and taken as strings otherwise. Every option may be repeated; each property may appear in one operation only.

Exit codes: 0 delivered, 1 failed (the outcome says why), 2 bad arguments (nothing is sent: no operation, field or group; a property given twice; an invalid id or value).

Example:

  amplitude-async identify --user-id user-1 --set plan=pro --add logins=1 --append tags=beta --unset old
"""

_OPS = "User-property operations"
_FLAG = {
    "$set": "--set",
    "$setOnce": "--set-once",
    "$add": "--add",
    "$append": "--append",
    "$prepend": "--prepend",
    "$preInsert": "--pre-insert",
    "$postInsert": "--post-insert",
    "$remove": "--remove",
}


def _pairs(flag: str, help_text: str) -> Any:
    """A repeatable NAME=VALUE option of one user-property operation."""
    return typer.Option(flag, metavar="NAME=VALUE", help=help_text, rich_help_panel=_OPS)


def identify(
    user_id: Annotated[str | None, typer.Option(help="The user's id.")] = None,
    device_id: Annotated[str | None, typer.Option(help="The device's id.")] = None,
    set_: Annotated[list[str] | None, _pairs("--set", "$set: set the property.")] = None,
    set_once: Annotated[
        list[str] | None, _pairs("--set-once", "$setOnce: set it only if it has no value yet.")
    ] = None,
    add: Annotated[
        list[str] | None, _pairs("--add", "$add: add a number (a missing property starts at 0).")
    ] = None,
    append: Annotated[
        list[str] | None, _pairs("--append", "$append: append to the property's list.")
    ] = None,
    prepend: Annotated[
        list[str] | None, _pairs("--prepend", "$prepend: put at the front of the list.")
    ] = None,
    pre_insert: Annotated[
        list[str] | None, _pairs("--pre-insert", "$preInsert: prepend values not in the list yet.")
    ] = None,
    post_insert: Annotated[
        list[str] | None, _pairs("--post-insert", "$postInsert: append values not in the list yet.")
    ] = None,
    remove: Annotated[
        list[str] | None, _pairs("--remove", "$remove: remove every instance of the value.")
    ] = None,
    unset: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="$unset: remove the property.", rich_help_panel=_OPS),
    ] = None,
    clear_all: Annotated[
        bool,
        typer.Option(help="$clearAll: remove every user property (alone).", rich_help_panel=_OPS),
    ] = False,
    field: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=VALUE",
            help="A device/location/app field, e.g. country=DE, platform=iOS, app_version=2.1.",
        ),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(metavar="TYPE=NAME", help="A group the user belongs to, e.g. org=acme."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for an outcome, retries included.")
    ] = 30.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    api_key: ApiKeyOption = None,
    server_zone: ServerZoneOption = Zone.US,
    server_url: ServerUrlOption = None,
) -> None:
    target = identify_target(api_key, server_zone, server_url)
    op = _build(
        user_id,
        device_id,
        {
            "$set": set_,
            "$setOnce": set_once,
            "$add": add,
            "$append": append,
            "$prepend": prepend,
            "$preInsert": pre_insert,
            "$postInsert": post_insert,
            "$remove": remove,
        },
        unset or [],
        clear_all,
        field or [],
        group or [],
    )
    import anyio

    outcome = anyio.run(_send, target, op, timeout)
    _report(outcome, json_output, target)
    if not outcome.ok:
        raise typer.Exit(1)


def _build(
    user_id: str | None,
    device_id: str | None,
    pairs: dict[str, list[str] | None],
    unset: list[str],
    clear_all: bool,
    fields: list[str],
    groups: list[str],
) -> Identify:
    from .. import Identify, ValidationError

    wire: dict[str, Any] = {}
    if user_id is not None:
        wire["user_id"] = user_id
    if device_id is not None:
        wire["device_id"] = device_id
    for text in fields:
        name, value = parse_pair(text, "--field")
        wire[name] = value
    if groups:
        wire["groups"] = dict(parse_pair(text, "--group") for text in groups)
    props: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    named = [(op, *parse_pair(t, _FLAG[op])) for op, texts in pairs.items() for t in texts or ()]
    named += [("$unset", name, "-") for name in unset]
    for operation, name, value in named:
        if name in seen:
            # A dict would silently keep the last; Amplitude allows one operation per
            # property in one identification.
            raise typer.BadParameter(
                f"property {name!r} is given twice; send a second identify for a second "
                "operation on the same property"
            )
        seen.add(name)
        props.setdefault(operation, {})[name] = (
            value if operation == "$unset" else parse_value(value)
        )
    if clear_all:
        props["$clearAll"] = "-"  # type: ignore[assignment]
    if props:
        wire["user_properties"] = props
    elif not fields and not groups:
        # Amplitude answers 200 to an identification that changes nothing: reporting
        # that as "delivered" would hide a command line that lost its operations.
        raise typer.BadParameter(
            "nothing to send: give at least one operation (--set NAME=VALUE, --add, "
            "--append, --unset NAME, ...), --field NAME=VALUE or --group TYPE=NAME"
        )
    try:
        # Through from_dict, so the command and `import` accept and refuse the same things.
        return Identify.from_dict(wire)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc


async def _send(target: IdentifyTarget, op: Identify, wait: float) -> Outcome:
    import anyio

    from .. import AmplitudeClient, ClientConfig, ConfigurationError, ValidationError

    config = ClientConfig(
        flush_interval=0.0,
        # Give up retrying a little before the wait ends, so that a server that keeps
        # failing ends in "retries_exhausted" with its last error, not a bare timeout.
        retry_deadline=wait * 0.8,
        retry_base=min(0.5, wait / 8),
        retry_cap=min(30.0, wait / 8),
        # The wait below is the deadline; closing then fails what is left at once.
        shutdown_timeout=0.0,
    )
    try:
        client = AmplitudeClient(
            target.api_key,
            server_zone=target.server_zone,
            server_url=target.server_url,
            config=config,
        )
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server-url") from None
    async with client as amp:
        try:
            receipt = await amp.identify(op)
        except ValidationError as exc:
            raise typer.BadParameter(str(exc)) from exc
        with anyio.move_on_after(wait + 1.0):
            await receipt
    # Closed: a receipt still open at the deadline now has its "shutdown" outcome.
    outcome = receipt.outcome
    assert outcome is not None
    return outcome


def _report(outcome: Outcome, as_json: bool, target: IdentifyTarget) -> None:
    from .. import Failed, FailureReason

    if as_json:
        import json

        data: dict[str, Any] = {"ok": outcome.ok, "status": outcome.status}
        if isinstance(outcome, Failed):
            data.update(reason=outcome.reason.value, message=outcome.message)
        data["attempts"] = outcome.attempts
        sys.stdout.write(json.dumps(data) + "\n")
        return
    from rich.console import Console

    if isinstance(outcome, Failed):
        message = outcome.message
        if outcome.reason is FailureReason.SHUTDOWN:
            message = "no outcome before --timeout (the server kept failing or throttling)"
        status = f" (HTTP {outcome.status})" if outcome.status else ""
        Console(stderr=True, highlight=False).print(
            f"[red]failed[/red]: {outcome.reason.value}{status}: {message}", markup=True
        )
        return
    attempts = "1 attempt" if outcome.attempts == 1 else f"{outcome.attempts} attempts"
    Console(highlight=False).print(
        f"[green]delivered[/green] to {target.describe()} (HTTP {outcome.status}, {attempts})"
    )


def register(app: typer.Typer) -> None:
    app.command(help=_HELP, no_args_is_help=True)(identify)
