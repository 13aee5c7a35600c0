"""Every command's --help: clear, with an example, quick, and never showing a key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplitude_async._cli import app

COMMANDS = ["demo", "identify", "import", "profile", "emulator"]
SCRIPT = Path(sys.executable).with_name("amplitude-async")


def test_the_root_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert "AMPLITUDE_API_KEY" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout
    assert f"amplitude-async {command}" in result.stdout


@pytest.mark.parametrize("command", ["identify", "import", "profile"])
def test_help_names_the_environment_but_never_shows_its_values(command: str) -> None:
    secrets = {
        "AMPLITUDE_API_KEY": "api-key-value-should-stay-hidden",
        "AMPLITUDE_SECRET_KEY": "secret-value-should-stay-hidden",
    }
    result = CliRunner().invoke(app, [command, "--help"], env=secrets, terminal_width=200)
    assert result.exit_code == 0
    assert "AMPLITUDE_" in result.stdout
    for value in secrets.values():
        assert value not in result.output


def test_help_does_not_import_what_the_commands_need() -> None:
    # --help must stay quick: the command modules import typer only at the top, and
    # the emulator, the live display and the import machinery only when they run.
    code = (
        "import sys; from typer.testing import CliRunner; from amplitude_async._cli import app;"
        "r = CliRunner().invoke(app, ['import', '--help']); assert r.exit_code == 0;"
        "heavy = ['amplitude_async.emulator._server', 'rich.live', 'amplitude_async._cli._importer',"
        " 'amplitude_async._cli._workload'];"
        "print([m for m in heavy if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")
def test_the_console_script_runs() -> None:
    done = subprocess.run([str(SCRIPT), "--help"], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0
    assert b"import" in done.stdout


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("amplitude-async ")


@pytest.mark.parametrize("argv", [[], *([command] for command in COMMANDS)])
def test_flags_show_no_value_placeholder(argv: list[str]) -> None:
    # "--json <bool>" reads as if the flag took a value.
    result = CliRunner().invoke(app, [*argv, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout
    help_line = next(line for line in result.stdout.splitlines() if "--help" in line)
    assert "<" not in help_line
    if not argv:
        verbose = next(line for line in result.stdout.splitlines() if "--verbose" in line)
        assert "<int>" not in verbose
