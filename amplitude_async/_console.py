"""The ``amplitude-async`` console script: the command line, or one line saying how to get it.

The command line needs the ``cli`` extra (typer and rich). The SDK does not: it is a
library that services and workers embed, and typer brings pydantic, rich and more with
it. So a plain ``pip install amplitude-async`` installs this script too, and without the
extra it prints one line naming the install command and exits 1, instead of a
``ModuleNotFoundError`` traceback. This module lives outside ``_cli`` because importing
that package imports typer.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Final

__all__ = ["EXTRA_HINT", "main", "missing_cli_requirements"]

#: What the command line needs beyond the SDK: the ``cli`` extra's packages.
CLI_REQUIREMENTS: Final = ("typer", "rich")
EXTRA_HINT: Final = "pip install 'amplitude-async[cli]' (in a checkout: pip install '.[cli]')"


def missing_cli_requirements() -> list[str]:
    """The ``cli`` extra's packages that are not installed (found without importing)."""
    return [name for name in CLI_REQUIREMENTS if importlib.util.find_spec(name) is None]


def main() -> None:
    """Entry point of the ``amplitude-async`` console script."""
    missing = missing_cli_requirements()
    if missing:
        sys.stderr.write(
            f"amplitude-async: the command line needs the 'cli' extra "
            f"({', '.join(missing)} not installed); install it with: {EXTRA_HINT}\n"
        )
        raise SystemExit(1)
    from ._cli import main as run

    run()
