"""The README's command-line examples, run as written against ``amplitude-async emulator``.

The block under "## Command line" is taken from README.md as it is: its first command
starts the emulator in the background (``... &``), the rest run one after the other in
one shell with ``set -e``, so every command must exit 0. Only the port changes (8787
becomes a free one), so that runs on a shared machine do not collide; the emulator is
started exactly as written otherwise, and the test waits for its "listening" line
before the rest, as a person does before typing the next command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    not (BIN / "amplitude-async").exists(), reason="the console script is not installed"
)


def command_line_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no ```sh block under '## Command line' in README.md"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_the_readme_command_line_examples_run_as_written(tmp_path: Path) -> None:
    block = command_line_block().replace("8787", str(free_port()))
    # One command per line, continuation lines joined as the shell joins them.
    commands = block.replace("\\\n", " ").strip().splitlines()
    assert commands[0].startswith("amplitude-async emulator ") and commands[0].endswith("&")
    rest = commands[1:]
    assert any(line.startswith("amplitude-async profile user-1") for line in rest)

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in list(env):
        if name.startswith("AMPLITUDE_"):
            del env[name]  # only what the README exports
    emulator = subprocess.Popen(
        shlex.split(commands[0].removesuffix("&"), comments=True),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        first = emulator.stdout.readline()
        assert first.startswith("Amplitude emulator listening on"), emulator.stderr.read()
        script = "set -e\n" + "\n".join(rest) + "\n"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    assert "delivered" in out  # identify
    assert "import finished" in out
    # profile user-1: properties, the cohort and the recommendation model defined by the
    # emulator's flags.
    assert '"pro"' in out and "logins" in out
    assert "cohorts: pro-users" in out
    assert re.search(r"rec-model-1: sku-\d, sku-\d, sku-\d", out)
    # profile user-2 --json: what the import sent, read back.
    profile = json.loads(out.strip().splitlines()[-1])
    assert profile["user_id"] == "user-2"
    assert profile["amp_props"] == {"plan": "team", "seats": 5}
