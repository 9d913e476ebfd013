"""The paper DAG's cost, from its real job list: jobs per rule, GPU-hours per stage, disk written.

Plans `configs/paper.yaml` with `snakemake --dry-run` from the repository root (the job counts
are Snakemake's), counts each stage's work from the config (lmlerp.report.cost) and prices it
with the throughputs of a GPU benchmark JSON (`--measured`, e.g. bench/results/gpu-*.json from
bench/gpu_check.sh) where it has them, else with the estimates of lmlerp.report.cost.ESTIMATES,
each marked as such. Prints two tables and writes one JSON.

    .venv/bin/python bench/paper_cost.py
    .venv/bin/python bench/paper_cost.py --measured bench/results/gpu-2026-12-02.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from lmlerp.io.atomic import write_json
from lmlerp.report import cost

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = {  # connectivity model name → architecture (configs/paper.yaml: the hub repositories)
    "bert-base-uncased": "bert-base-uncased",
    "roberta-base": "roberta-base",
    "roberta-large": "roberta-large",
}
RATE_KEYS = ("decode_tokens_per_s", "xl_tokens_per_s", "mfu")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/paper.yaml")
    parser.add_argument("--measured", type=Path, help="a GPU benchmark JSON with `rates`")
    parser.add_argument("--out", type=Path, default=ROOT / "results/bench/paper_cost.json")
    return parser.parse_args()


def planned_jobs(config: Path) -> dict[str, int]:
    """Snakemake's job stats for `config`, planned from the repository root."""
    command = [sys.executable, "-m", "snakemake", "--configfile", str(config), "--cores", "16"]
    command += ["--resources", "gpu=1", "--dry-run", "--quiet", "rules"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"snakemake --dry-run failed:\n{result.stderr[-3000:]}")
    return cost.job_counts(result.stdout + result.stderr)


def rates(measured: Path | None) -> dict[str, tuple[float, str]]:
    """Throughputs with their source: the measured JSON's `rates` first, estimates otherwise."""
    found = json.loads(measured.read_text()).get("rates", {}) if measured else {}
    chosen = dict(cost.ESTIMATES)
    for key in RATE_KEYS:
        if key in found:
            chosen[key] = (float(found[key]), f"measured: {measured.name}")
    return chosen


def main() -> None:
    args = parse()
    config = yaml.safe_load(args.config.read_text())
    jobs = planned_jobs(args.config)
    chosen = rates(args.measured)
    stages = cost.gpu_hours(cost.workload(config, ENCODERS), {k: v for k, (v, _) in chosen.items()})
    for stage in stages:
        stage["jobs"] = sum(jobs.get(rule, 0) for rule in stage["rules"])
    print(f"{'rule':<24}{'jobs':>6}")
    for rule, n in sorted(jobs.items(), key=lambda kv: -kv[1]):
        print(f"{rule:<24}{n:>6}")
    print(f"{'total':<24}{sum(jobs.values()):>6}\n")
    print(f"{'stage':<30}{'jobs':>6}{'tokens':>12}{'GPU-h':>9}{'disk GB':>9}")
    for s in stages:
        print(
            f"{s['stage']:<30}{s['jobs']:>6}{s['tokens']:>12.3g}{s['gpu_hours']:>9.2f}"
            f"{s['bytes'] / 1e9:>9.1f}"
        )
    total_h = sum(s["gpu_hours"] for s in stages)
    total_gb = sum(s["bytes"] for s in stages) / 1e9
    print(f"{'total':<30}{'':>6}{'':>12}{total_h:>9.2f}{total_gb:>9.1f}")
    for key, (value, source) in chosen.items():
        print(f"  {key} = {value:g}  ({source})")
    write_json(
        args.out,
        {
            "config": str(args.config.relative_to(ROOT)),
            "jobs": jobs,
            "stages": stages,
            "rates": {k: {"value": v, "source": src} for k, (v, src) in chosen.items()},
            "total_gpu_hours": total_h,
            "total_disk_gb": total_gb,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
