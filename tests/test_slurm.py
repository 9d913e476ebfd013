"""The tiny config through profiles/slurm on a real one-node SLURM cluster on localhost.

The cluster (tests/slurm_cluster.py) offers two fake GPUs, so SLURM schedules `--gpus=1` jobs as on
a GPU cluster while they run on the CPU. On a copy of the local tiny run, the jobs of every
GPU-capable rule and of one CPU rule that a few targets need are run again through SLURM
(`--forcerun`): checked, the GPU rules reach SLURM with `--gpus=1` and the CPU rule without, what
they rewrite is byte-identical to the local run's, and a job killed by `scancel` fails the run
with SLURM's verdict while the next run completes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import slurm_cluster
import yaml
from workflow_helpers import (
    GPU_RULES,
    REPO,
    RESUME_TARGETS,
    assert_resumed,
    assert_same_weights,
    copy_run,
    snakemake,
    snakemake_command,
)  # fmt: skip

pytestmark = pytest.mark.slurm
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
# The rules that carry `resources: gpu=GPUS` (those under the config's `resources:`). The tiny
# config runs on the CPU (GPUS = 0), so the test profile sets gpu=1 on them, as `device: cuda`
# would: only the request is under test here.

PAPER_ONLY = {"finetune_reference"}  # planned only when the reference is not θ0 (paper scale)
PLACEHOLDERS = {"slurm_account": "<ACCOUNT>", "slurm_partition": "<PARTITION>"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[slurm_cluster.Cluster]:
    """munged + slurmctld + slurmd on localhost for this module, stopped by PID afterwards."""
    missing = slurm_cluster.missing_binaries()
    if missing:
        reason = (
            f"SLURM not installed (missing {', '.join(missing)}); "
            "apt-get install slurmctld slurmd slurm-client munge"
        )
        if os.environ.get("CI") == "true":  # CI installs them (.ci/run): never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = slurm_cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="module")
def profile(cluster, tmp_path_factory) -> Path:
    """profiles/slurm with its placeholders filled for the local cluster and fast polling."""
    settings = yaml.safe_load(PROFILE.read_text())
    resources = settings["default-resources"]
    assert {key: resources[key] for key in PLACEHOLDERS} == PLACEHOLDERS
    resources.update(slurm_account=slurm_cluster.ACCOUNT, slurm_partition=slurm_cluster.PARTITION)
    # Jobs here take seconds: poll after 2 s, not 40 (squeue stays usable: MinJobAge=3600 > 3 × 2).
    settings["slurm-init-seconds-before-status-checks"] = 2
    settings["latency-wait"] = 5
    settings["set-resources"] = {rule: {"gpu": 1} for rule in sorted(GPU_RULES)}
    directory = tmp_path_factory.mktemp("slurm-profile")
    (directory / "config.yaml").write_text(yaml.safe_dump(settings))
    return directory


# One job or two of every GPU-capable rule and one CPU rule (aggregate), re-run through SLURM on a
# copy of the local run: every rule kind reaches the scheduler without re-running the whole DAG.
TARGETS = [
    "results/tables/decorrelated.parquet",  # aggregate ← evaluate ← pretrain θ0, θC4
    "results/connectivity/lmc/pt20/full/barriers.parquet",  # connect ← classifier ← budget
    "results/connectivity/bezier/seeds_full/curves.parquet",  # bezier ← classifier of θ0
]
FORCED = sorted(GPU_RULES - PAPER_ONLY | {"aggregate"})


@pytest.fixture(scope="module")
def slurm_run(cluster, profile, tmp_path_factory, request) -> tuple[Path, float]:
    """A copy of the local tiny run whose jobs of `FORCED` rules that `TARGETS` (and one
    fine-tuning candidate) need are run again through the SLURM profile; and when it began.

    The local run is requested here, not as an argument: pytest would make the session-scoped
    run before the module's cluster fixture had the chance to skip.
    """
    tiny_run = request.getfixturevalue("tiny_run")
    work = copy_run(tiny_run, tmp_path_factory.mktemp("tiny-slurm") / "run")
    candidate = sorted((work / "results/finetune/pos").glob("*/metrics.json"))[0]
    targets = [*TARGETS, str(candidate.relative_to(work))]
    began = time.time()
    result = snakemake(
        work, "--profile", str(profile), *targets, "--forcerun", *FORCED, env=cluster.env,
        timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:] + "\n" + cluster.logs()
    return work, began


def submitted_jobs(cluster) -> list[dict[str, str]]:
    """Every job the controller knows: id, rule (from the executor's comment), state, GPUs."""
    shown = cluster.run("scontrol", "show", "job", "--oneliner").stdout
    found = []
    for line in shown.splitlines():
        fields = dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", line))
        if "JobId" not in fields:  # "No jobs in the system"
            continue
        rule = re.match(r"rule_(.+?)(?:_wildcards_.*)?$", fields.get("Comment", ""))
        found.append(
            {
                "id": fields["JobId"],
                "rule": rule.group(1) if rule else "",
                "state": fields["JobState"],
                "gpus": fields.get("TresPerJob", ""),
            }
        )
    return found


def test_gpu_rules_are_submitted_with_one_gpu_and_the_others_without(slurm_run, cluster):
    jobs = submitted_jobs(cluster)
    rules = {job["rule"] for job in jobs}
    assert rules == set(FORCED), rules
    for job in jobs:
        assert job["state"] == "COMPLETED", job
        # `--gpus=1` is TresPerJob=gres:gpu:1 in slurm 22.05; gres/gpu:1 is accepted for later ones
        one_gpu = re.fullmatch(r"gres[:/]gpu:1", job["gpus"]) is not None
        assert one_gpu == (job["rule"] in GPU_RULES), job


def outputs(run: Path, pattern: str) -> list[Path]:
    return sorted(path.relative_to(run) for path in run.glob(pattern))


def test_results_equal_the_local_run(slurm_run, request):
    work, began = slurm_run
    tiny_run = request.getfixturevalue("tiny_run")
    tables = outputs(tiny_run, "results/**/*.parquet")
    models = outputs(tiny_run, "results/**/*.safetensors")
    assert outputs(work, "results/**/*.parquet") == tables
    assert outputs(work, "results/**/*.safetensors") == models
    rewritten = {p for p in tables + models if (work / p).stat().st_mtime > began}
    for expected in (
        "results/models/theta0/model.safetensors",  # pretrain
        "results/models/theta_c4/model.safetensors",
        "results/tables/decorrelated.parquet",  # aggregate
        "results/evaluate/decorrelated/c0/points.parquet",  # evaluate
        *TARGETS[1:],  # connect, bezier
    ):
        assert Path(expected) in rewritten, expected
    assert any("results/connectivity/finetune" in str(p) for p in rewritten)
    assert any("results/finetune/pos" in str(p) for p in rewritten)
    for relative in tables + models:
        local, remote = (tiny_run / relative).read_bytes(), (work / relative).read_bytes()
        assert local == remote, f"{relative} differs between the local and the SLURM run"


def wait_for_job(cluster, rule: str, timeout: float = 180) -> str:
    """The id of the first queued or running job of `rule`, as soon as squeue lists it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in submitted_jobs(cluster):
            if job["rule"] == rule and job["state"] in {"PENDING", "RUNNING"}:
                return job["id"]
        time.sleep(0.5)
    raise TimeoutError(f"no {rule} job was submitted within {timeout:.0f} s")


def test_a_cancelled_job_fails_the_run_and_the_next_run_completes(slurm_run, cluster, profile):
    slurm_run, _ = slurm_run
    chunk = sorted(slurm_run.glob("results/evaluate/*/c*/points.parquet"))[0].parent
    target = (chunk / "points.parquet").relative_to(slurm_run)
    reference = (slurm_run / target).read_bytes()
    shutil.rmtree(chunk)
    log = slurm_run / "cancelled.log"
    command = snakemake_command(slurm_run, "--profile", str(profile), str(target))
    with log.open("w") as out:
        run = subprocess.Popen(command, cwd=slurm_run, env=cluster.env, stdout=out, stderr=out)
        try:
            job = wait_for_job(cluster, "evaluate")
            assert cluster.run("scancel", job).returncode == 0
            returncode = run.wait(timeout=300)
        finally:
            run.kill()
    output = log.read_text()
    assert returncode != 0, output[-3000:]
    assert f"SLURM-job '{job}' failed, SLURM status is: 'CANCELLED'" in output, output[-3000:]
    assert "Error in rule evaluate" in output, output[-3000:]
    assert not (slurm_run / target).exists()

    again = snakemake(slurm_run, "--profile", str(profile), str(target), env=cluster.env)
    assert again.returncode == 0, again.stderr[-5000:]
    assert (slurm_run / target).read_bytes() == reference


def test_a_cancelled_training_job_resumes_from_its_state(cluster, profile, tmp_path, request):
    """`scancel` a pretraining job once it saved a state: the next run resumes from it (its log
    says from which step) and writes the weights of the uninterrupted run."""
    reference, configfile = request.getfixturevalue("resume_reference")
    work = shutil.copytree(reference, tmp_path / "run", symlinks=True)
    target, state = RESUME_TARGETS[0], work / "resources/resume/pretrain/theta_c4"
    command = snakemake_command(
        work, "--profile", str(profile), target, "--forcerun", "pretrain", configfile=configfile
    )
    with (work / "cancelled.log").open("w") as out:
        run = subprocess.Popen(command, cwd=work, env=cluster.env, stdout=out, stderr=out)
        try:
            job = wait_for_job(cluster, "pretrain")
            deadline = time.monotonic() + 300
            while not (state / "state.json").is_file():
                assert time.monotonic() < deadline and run.poll() is None, "no state saved"
                time.sleep(0.05)
            assert cluster.run("scancel", job).returncode == 0
            assert run.wait(timeout=300) != 0
        finally:
            run.kill()
    again = snakemake(
        work, "--profile", str(profile), target, configfile=configfile, env=cluster.env
    )
    assert again.returncode == 0, again.stderr[-5000:]
    assert_resumed(work / "logs/pretrain/theta_c4.log")
    assert_same_weights(work, reference, target)
