"""Help that reads right: flags and counters show no value placeholder.

Recent typer versions print a type for every option in ``--help``, flags included
(``--json  <bool>``), which reads as if the flag took a value. An empty metavar is
what typer prints for an option's type when one is set, so flags get an empty one just
before their command is used. Older typer versions print nothing there either way.
"""

from __future__ import annotations

from typing import Any

import typer.core

__all__ = ["HelpGroup"]


def _hide_flag_metavars(command: Any, ctx: Any) -> None:
    # get_params() includes the --help option (created on first use, then kept).
    for param in command.get_params(ctx):
        # A flag (--json) or a counter (-v, -vv) takes no value: nothing to show.
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""


class HelpGroup(typer.core.TyperGroup):
    """The root command: its own flags and each command's flags without ``<bool>``."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _hide_flag_metavars(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _hide_flag_metavars(self, ctx)
        super().format_help(ctx, formatter)
