"""A CI-sized run of the benchmark suite (``python -m benchmarks --smoke``), so it never rots.

Tiny sizes and one repeat: seconds, not minutes. It checks that every scenario and
contender ran and produced sane figures, not the targets (those are for the full run on
a quiet machine, see docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import amplitude_async

ROOT = Path(__file__).resolve().parent.parent
try:
    importlib.metadata.version("amplitude-analytics")
    HAVE_OFFICIAL = True
except importlib.metadata.PackageNotFoundError:  # the suite skips the official SDK then
    HAVE_OFFICIAL = False

pytestmark = pytest.mark.skipif(
    not (ROOT / "benchmarks" / "suite.py").exists(), reason="no benchmarks/ in this checkout"
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--no-chart", "--quiet", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "latest.json").read_text()), out


def test_every_scenario_and_contender_ran(smoke: tuple[dict[str, Any], Path]) -> None:
    result, out = smoke
    assert result["errors"] == 0
    expected = {
        "user_workloads": {
            "new_users",
            "per_user_5",
            "per_user_5_no_coalesce",
            "service",
            "raw_loop",
        },
        "stall": {"users_20k", "users_2k"},
        "throughput": {
            "amplitude_async",
            "amplitude_async_no_coalesce",
            "amplitude_async_prebuilt",
            "raw_loop",
            "raw_http",
        },
        "caller_cost": {"amplitude_async"},
        "memory": {"amplitude_async"},
        "head_of_line": {"baseline", "throttled", "throttled_short_hold"},
    }
    if HAVE_OFFICIAL:
        expected["user_workloads"].add("official_sdk")
        expected["throughput"].add("official_sdk")
        expected["caller_cost"].add("official_sdk")
    assert {k: set(v) for k, v in result["scenarios"].items()} == expected
    for scenario in result["scenarios"].values():
        for contender in scenario.values():
            assert contender["errors"] == 0
            assert len(contender["runs"]) == result["sizes"]["repeats"]
    assert (out / "latest.md").read_text().startswith("# amplitude-async benchmark")
    assert not (out / "latest.png").exists()  # --no-chart


def test_figures_are_sane(smoke: tuple[dict[str, Any], Path]) -> None:
    result, out = smoke
    sizes = result["sizes"]
    throughput = result["scenarios"]["throughput"]
    for name, contender in throughput.items():
        assert contender["all_delivered"], name
        assert contender["ops_per_second"]["median"] > 1000, name
        assert contender["cpu_ms_per_1000_ops"]["median"] > 0, name
    users = result["scenarios"]["user_workloads"]
    for name, contender in users.items():
        # Every run delivered all of its operations (workloads.py raises otherwise).
        assert [r["delivered"] for r in contender["runs"]] == [sizes["user_ops"]], name
        assert contender["ops_per_second"]["median"] > 500, name
        assert contender["us_per_op_cpu"]["median"] > 0, name
    assert result["ratios"]["new_users_vs_raw_loop"]["value"] > 0
    # Coalescing really happened where a user had several operations queued.
    assert users["per_user_5_no_coalesce"]["identifications_per_op"]["median"] == 1
    for contender in result["scenarios"]["stall"].values():
        assert contender["loop_stall.max_ms"]["median"] > 0
    assert (out / "latest.md").read_text().count("User workloads") == 1
    ours = result["scenarios"]["caller_cost"]["amplitude_async"]
    assert 0 < ours["identify_us.p50"]["median"] <= ours["identify_us.p99"]["median"]
    assert ours["loop_stall.max_ms"]["median"] >= 0
    memory = result["scenarios"]["memory"]["amplitude_async"]["runs"][0]
    assert memory["queued"] >= sizes["memory_ops"]
    assert 50 < memory["bytes_per_op"] < 5000
    hol = result["scenarios"]["head_of_line"]
    for name in ("throttled", "throttled_short_hold"):
        run = hol[name]["runs"][0]
        assert run["server_429s"] > 0, name  # the hot users really were refused
        assert run["delivered"] == sizes["hol_ops"], name
        assert run["sequence_violations"] == 0, name
        assert run["users_out_of_sequence"] == 0, name
    assert hol["baseline"]["runs"][0]["server_429s"] == 0


def test_result_records_machine_pinning_calibration_and_targets(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    result, out = smoke
    machine = result["machine"]
    assert machine["cpu_model"] and machine["cpus"] >= 1 and machine["python"]
    assert machine["packages"]["amplitude-async"]
    # The children imported the package this interpreter has installed (the source tree
    # for an editable install, the venv's copy for the compiled build), and say so.
    build = result["build"]
    assert Path(build["package_file"]).resolve() == Path(amplitude_async.__file__).resolve()
    assert ("compiled (" in (out / "latest.md").read_text()) == bool(build["compiled"])
    assert set(result["pinning"]) >= {"possible", "server_pinned", "client_pinned"}
    assert result["calibration"]["start"]["best_ms"] > 0
    assert result["calibration"]["end"]["best_ms"] > 0
    names = {t["name"] for t in result["targets"]}
    assert names == {
        "throughput_vs_raw_loop",
        "throughput_vs_official_sdk",
        "identify_p99_vs_official_sdk",
        "head_of_line",
        "head_of_line_short_hold",
        "hot_user_reordering",
        "bytes_per_queued_op",
        "loop_stall",
    }
    for target in result["targets"]:
        if target["met"] is False:
            assert target["by"]  # a miss says by how much
    if not HAVE_OFFICIAL:
        assert result["official_sdk"].startswith("skipped")


def test_chart_draws_when_matplotlib_is_installed(
    smoke: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks import report

    result, _ = smoke
    png = tmp_path / "chart.png"
    report.draw(result, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
