"""The ``amplitude-async`` command line.

One module per command, each with a ``register(app)`` function. Command modules import
only typer and the standard library at import time; the SDK, aiohttp and rich are
imported inside the commands, so that ``amplitude-async --help`` stays quick.

Optional commands (``bench``) register themselves only when their module exists: add
``amplitude_async/_cli/_bench.py`` with a ``register(app)`` and it shows up.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from ._help import HelpGroup
from ._logging import configure_logging

__all__ = ["app", "main"]

# In the order they are listed by --help.
_COMMANDS = ("_demo", "_identify", "_import", "_profile", "_emulator", "_kafka")
_OPTIONAL_COMMANDS = ("_bench",)

app = typer.Typer(
    name="amplitude-async",
    cls=HelpGroup,
    help=(
        "Keep Amplitude user properties in sync from the command line: send one identify, "
        "import a file of users, look up a profile, run a local Amplitude emulator, or "
        "watch the whole pipeline work in the demo.\n\n"
        "Settings come from flags or the environment: AMPLITUDE_API_KEY, "
        "AMPLITUDE_SECRET_KEY, AMPLITUDE_SERVER_ZONE (US/EU), AMPLITUDE_SERVER_URL, "
        "AMPLITUDE_PROFILE_URL.\n\n"
        "Example: [bold]amplitude-async demo[/bold]"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    # Tracebacks with locals could print an API key; keep them short and local-free.
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"amplitude-async {version('amplitude-async')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Log more: -v warnings (429 holds, retries), -vv info, -vvv debug.",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.call_on_close(configure_logging(verbose))


def _register() -> None:
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(app)
    for name in _OPTIONAL_COMMANDS:
        qualified = f"{__name__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise  # the module exists but one of its imports is missing: say so
            continue
        module.register(app)


_register()


def main() -> None:
    """Entry point of the ``amplitude-async`` console script."""
    app()
