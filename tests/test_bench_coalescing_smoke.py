"""Smoke test of ``python -m benchmarks.coalescing --quick``: runs, prints, writes JSON.

The benchmark starts the emulator in its own process and runs the client twice; the
quick mode takes a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_reports_coalescing(tmp_path: Path) -> None:
    out = tmp_path / "coalescing.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.coalescing", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "identifications sent / op" in proc.stdout
    report = json.loads(out.read_text())
    on, off = report["results"]["on"], report["results"]["off"]
    assert report["workload"]["ops"] == on["ops"] == off["ops"] == 2000
    # Coalescing on: everything delivered, far fewer identifications than operations,
    # and the emulator ends in the reference state.
    assert on["delivered"] == 2000
    assert on["identifications_per_op"] < 0.8
    assert on["state_matches_reference"] is True
    # Off: one identification per operation at least (re-sends count again).
    assert off["identifications_per_op"] >= 1.0
    assert on["identifications_sent"] < off["identifications_sent"]
    assert on["throttle_responses"] <= off["throttle_responses"]
