"""Run the Snakemake workflow of this repository in a scratch directory (for the tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from lmlerp.report.cost import job_counts  # noqa: F401  (re-exported for the tests)

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
# The rules that request gpu=1 with device: cuda (resources: gpu=GPUS in workflow/rules/)
GPU_RULES = frozenset({"pretrain", "finetune", "finetune_reference", "evaluate", "pretrain_budget"})
GPU_RULES |= {"finetune_classifier", "connect", "bezier"}
DOWNLOADS = REPO / "resources" / "downloads"  # shared cache of the pinned PyPI artifacts
# what the resume tests kill and re-run: a pretraining and a classifier job
RESUME_TARGETS = ["results/models/theta_c4", "results/connectivity/finetune/pt20/full/checkpoints"]


def prepare_workdir(workdir: Path) -> Path:
    """A scratch working directory whose download cache is the repository's (fetched once)."""
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    (workdir / "resources").mkdir(parents=True, exist_ok=True)
    link = workdir / "resources" / "downloads"
    if not link.exists():
        link.symlink_to(DOWNLOADS, target_is_directory=True)
    return workdir


def snakemake_command(workdir: Path, *args: str, configfile: Path = TINY) -> list[str]:
    """The command line `snakemake --cores 2 ARGS` on this repository's Snakefile in `workdir`."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(configfile),
        "--cores", "2",
        *args,
    ]  # fmt: skip


def snakemake(
    workdir: Path,
    *args: str,
    configfile: Path = TINY,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Run `snakemake --cores 2 ARGS` inside `workdir`, in `env` (default: this process's)."""
    command = snakemake_command(workdir, *args, configfile=configfile)
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )


def jobs(dry_run_output: str) -> list[dict[str, str]]:
    """Every planned job of a dry run: rule, reason, wildcards and resources as printed."""
    found = []
    for chunk in re.split(r"^(?:local)?rule ", dry_run_output, flags=re.MULTILINE)[1:]:
        job = {"rule": chunk.split(":", 1)[0]}
        for key in ("reason", "wildcards", "resources"):
            match = re.search(rf"^\s+{key}: (.*)$", chunk, flags=re.MULTILINE)
            job[key] = match.group(1) if match else ""
        found.append(job)
    return found


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of a finished run directory to break or re-run parts of; the big read-only inputs
    (judge LM, downloaded assets) hard-linked, everything a job may rewrite really copied."""
    linked = ["results/models/judge_lm", "resources/smollm2", "resources/gensim", "resources/vader"]
    skip = {Path(p).name for p in linked}
    shutil.copytree(run, dest, symlinks=True, ignore=lambda _, names: skip & set(names))
    for path in linked:
        subprocess.run(["cp", "-al", run / path, dest / path], check=True)
    return dest


def assert_resumed(log: Path) -> None:
    """The job's log says it resumed from a saved state, at a step > 0."""
    text = log.read_text()
    steps = [int(n) for n in re.findall(r"resuming from step (\d+)", text)]
    assert steps and min(steps) > 0, text[-3000:]


def assert_same_weights(work: Path, reference: Path, target: str) -> None:
    """Every safetensors file under `target` is byte-identical in `work` and `reference`."""
    weights = sorted(p.relative_to(reference) for p in (reference / target).rglob("*.safetensors"))
    assert weights, target
    assert sorted(p.relative_to(work) for p in (work / target).rglob("*.safetensors")) == weights
    for path in weights:
        assert (work / path).read_bytes() == (reference / path).read_bytes(), path
