"""The GPU check's dry path: bench/gpu_check.sh --device cpu runs every entry point, tiny."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_path_writes_its_report(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    run = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = (tmp_path / "gpu_check.log").read_text()
    assert run.returncode == 0, log[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["ok"], report["steps"]
    assert report["steps"]["cuda_tests"]["rc"] == 0
    assert report["steps"]["paper_smoke"]["note"].startswith("skipped: dry path")
    cuda = report["generation"]["cuda"]
    assert cuda["device"] == "smoke run on CPU"
    assert set(cuda["generation"]) == {"ours", "hf_generate", "hf_generate_static"}
    plan = cuda["paper_projection"]
    assert plan["points"] == 491 and plan["evaluate_jobs"] == 18  # configs/paper.yaml's DAG
    assert plan["total_min"] > 0
