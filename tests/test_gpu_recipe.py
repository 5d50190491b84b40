"""The GPU speed script runs end to end (at smoke sizes on the CPU) and prints what BENCHMARKS.md records."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_recipe.py"


@pytest.mark.slow
def test_gpu_recipe_script_runs_at_smoke_size_and_extrapolates_the_sweep():
    environment = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--no-compile", "--share", "2"],
                          capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "SMOKE SIZES" in out and "not CIFAR-10" in out, "the output says what the numbers are not"
    assert float(re.search(r"speedup_vs_baseline=([0-9.]+)", out).group(1)) > 0
    runs = dict(re.findall(r"(\w+) ([0-9.]+)", out.split("one run each (s): ")[1].splitlines()[0]))
    assert set(runs) == {"rewod", "cf", "scrub", "badt", "ssd", "ssd_reusing_importances"}
    assert re.search(r"2 at once [0-9.]+ s: throughput gain [0-9.]+x", out)
    last = out.strip().splitlines()[-1]
    hours, ratio = re.fullmatch(r"sweep_hours=([0-9.]+) with 2 runs per device; target_hours=2 ratio_to_target=([0-9.]+)",
                                last).groups()
    assert float(hours) > 0 and abs(float(hours) / 2 - float(ratio)) < 0.01
