"""``python -m benchmarks.compare``: the user workloads in child interpreters, side by side.

Tiny sizes: this checks that the runner works, isolates the child from the source tree
and reports what it measured, not the figures (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import amplitude_async

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (ROOT / "benchmarks" / "compare.py").exists(), reason="no benchmarks/ in this checkout"
)


def run_compare(out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``python -m benchmarks.compare --quick ARGS --json OUT``: it must succeed; its output
    and the JSON it wrote."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare", "--quick", *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("compare") / "compare.json"
    proc, result = run_compare(
        out,
        "--venv",
        f"a={sys.executable}",
        "--venv",
        f"b={sys.executable}",
        "--only",
        "new_users,per_user_5_no_coalesce,stall_2k_users,memory",
        "--no-peers",
    )
    assert "| new_users | ops_per_second |" in proc.stdout
    return result


def test_every_workload_ran_under_every_interpreter(quick: dict[str, Any]) -> None:
    runs = quick["runs"]
    assert set(runs) == {"new_users", "per_user_5_no_coalesce", "stall_2k_users", "memory"}
    for workload, per_venv in runs.items():
        assert set(per_venv) == {"a", "b"}, workload
        for venv_runs in per_venv.values():
            assert [r.get("error") for r in venv_runs] == [None], workload
    new_users = runs["new_users"]["a"][0]
    assert new_users["delivered"] == new_users["ops"] == 3_000
    assert new_users["users"] == 3_000
    assert runs["per_user_5_no_coalesce"]["a"][0]["identifications_per_op"] == 1.0
    assert runs["stall_2k_users"]["b"][0]["loop_stall"]["ticks"] > 0
    assert 50 < runs["memory"]["a"][0]["bytes_per_op"] < 5_000


def test_ratios_compare_with_the_first_interpreter(quick: dict[str, Any]) -> None:
    summary = quick["summary"]
    assert quick["base"] == "a"
    cell = summary["new_users"]["b"]
    assert cell["min"] <= cell["median"] <= cell["max"]
    assert cell["ratios"]["vs_a"]["of_medians"] > 0
    assert "ratios" not in summary["new_users"]["a"]


def test_the_child_imports_the_installed_package_not_the_source_tree(
    quick: dict[str, Any],
) -> None:
    # The child runs with -P from a directory holding only benchmarks/: it imports what
    # this interpreter has installed, which is what this test process imported too (the
    # source tree for an editable install, the venv's copy for the compiled build).
    build = quick["venvs"]["a"]["build"]
    assert Path(build["package_file"]).resolve() == Path(amplitude_async.__file__).resolve()
    assert build["python"] == sys.version.split()[0]


def test_bad_venv_arguments_are_refused() -> None:
    from benchmarks import compare

    with pytest.raises(SystemExit, match="NAME=PATH"):
        compare.parse_venvs(["nopath"])
    with pytest.raises(SystemExit, match="given twice"):
        compare.parse_venvs([f"a={sys.executable}", f"a={sys.executable}"])
    with pytest.raises(SystemExit, match="no python"):
        compare.parse_venvs([f"a={ROOT / 'no-such-venv'}"])
    assert compare.parse_venvs([]) == {"this": sys.executable}


def test_stall_workloads_say_which_stalls_hold_a_full_collection(quick: dict[str, Any]) -> None:
    stall = quick["runs"]["stall_2k_users"]["a"][0]
    gc_info = stall["gc"]
    assert gc_info["full_collections"] >= 0
    assert gc_info["full_collection_max_ms"] >= 0.0
    # The worst stall without a full collection can only be the worst stall or less.
    assert 0.0 <= stall["loop_stall"]["max_outside_full_gc_ms"] <= stall["loop_stall"]["max_ms"]


def test_user_workloads_run_with_the_opentelemetry_sdk(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    _, result = run_compare(
        tmp_path / "otel.json", "--only", "new_users", "--no-peers", "--otel", "traces"
    )
    run = result["runs"]["new_users"]["this"][0]
    assert run["otel"] == "traces"
    # The SDK's meter saw every request the client made.
    assert run["otel_requests_recorded"] == run["requests"] > 0
