"""Benchmark of a no-op re-run: `snakemake --cores 2` on a finished run, which has nothing to do.

What a user pays for every status check or re-run is Snakemake parsing the workflow and building
the DAG. Parsing imports only torch-free modules (`lmlerp.config`, `lmlerp.space.paths`). Three
contenders, interleaved, medians of `--repeats` runs: the no-op itself; the same no-op with torch
and transformers imported first (what parsing cost when the Snakefile imported them through the
scorer registry); and the floor, Snakemake's own start-up on a one-rule workflow with nothing to
do (its import and plugin scan, which no workflow can avoid). Prints a table, writes one JSON.

    python bench/noop.py                 # in the repository, after `make run`
    python bench/noop.py --workdir DIR   # any finished run directory of this Snakefile
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EAGER = "import torch, transformers, sys; from snakemake.cli import main; sys.exit(main())"
LEAN = "import sys; from snakemake.cli import main; sys.exit(main())"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT, help="a finished run directory")
    parser.add_argument("--configfile", type=Path, default=None, help="default: the workflow's")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results/bench/noop.json")
    return parser.parse_args()


def seconds(command: list[str], cwd: Path) -> float:
    """Wall time of one command; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])} … failed:\n{done.stderr[-2000:]}")
    return took


def main() -> None:
    args = parse()
    flags = ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(args.workdir)]
    flags += ["--configfile", str(args.configfile)] if args.configfile else []
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", *flags, "--cores", "2", "-n", "-q"],
        cwd=args.workdir, capture_output=True, text=True,
    )  # fmt: skip
    if dry.returncode or "Nothing to be done" not in dry.stdout + dry.stderr:
        raise SystemExit(f"{args.workdir}: a dry run plans jobs, so it is no finished run")
    empty = Path(tempfile.mkdtemp(prefix="noop-floor-"))
    (empty / "Snakefile").write_text('rule all:\n    input:\n        "done.txt",\n')
    (empty / "done.txt").touch()  # the one input exists: nothing to do, as in a finished run
    floor = ["--snakefile", str(empty / "Snakefile"), "--directory", str(empty)]
    runs = {"lean": [], "eager": [], "floor": []}
    for _ in range(args.repeats):  # interleaved, so that machine load hits all alike
        for name, code, where in (
            ("lean", LEAN, flags),
            ("eager", EAGER, flags),
            ("floor", LEAN, floor),
        ):
            command = [sys.executable, "-c", code, *where, "--cores", "2", "-q"]
            runs[name].append(seconds(command, args.workdir))
    imports = [seconds([sys.executable, "-c", "import torch, transformers"], ROOT)]
    imports += [seconds([sys.executable, "-c", "pass"], ROOT)]
    median = {name: statistics.median(times) for name, times in runs.items()}
    report = {
        "host": platform.node(),
        "workdir": str(args.workdir),
        "repeats": args.repeats,
        "noop_s": runs["lean"],
        "noop_median_s": median["lean"],
        "eager_import_noop_s": runs["eager"],
        "eager_import_noop_median_s": median["eager"],
        "saved_s": median["eager"] - median["lean"],
        "eager_over_lean": median["eager"] / median["lean"],
        "snakemake_floor_s": runs["floor"],
        "snakemake_floor_median_s": median["floor"],
        "workflow_over_floor_s": median["lean"] - median["floor"],
        "torch_transformers_import_s": imports[0] - imports[1],
    }
    print(f"{'no-op snakemake --cores 2':<44}{'median s':>10}")
    print(f"{'lean parse (this workflow)':<44}{median['lean']:>10.2f}")
    print(f"{'with torch + transformers imported first':<44}{median['eager']:>10.2f}")
    print(f"{'floor: Snakemake start-up, one-rule workflow':<44}{median['floor']:>10.2f}")
    print(
        f"saved {report['saved_s']:.2f} s per run (×{report['eager_over_lean']:.2f}); "
        f"importing torch + transformers alone: {report['torch_transformers_import_s']:.2f} s; "
        f"this workflow's parse and DAG above the floor: {report['workflow_over_floor_s']:.2f} s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
