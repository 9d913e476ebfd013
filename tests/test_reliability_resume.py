"""Resume after a kill: a training job SIGKILLed (with its Snakemake) once it saved a state is
re-run by Snakemake, continues from that state — its log says from which step — and writes
weights byte-identical to an uninterrupted run's.

The tiny config trains too fast to kill a job between two states reliably, so the reference
(`resume_reference`, conftest.py) raises its budgets and runs the jobs' targets uninterrupted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from kill_harness import kill_tree, start
from workflow_helpers import (
    RESUME_TARGETS,
    assert_resumed,
    assert_same_weights,
    snakemake,
)

pytestmark = pytest.mark.workflow

# rule, target, its resume directory, its log
JOBS = [
    ("pretrain", RESUME_TARGETS[0], "resources/resume/pretrain/theta_c4",
     "logs/pretrain/theta_c4.log"),
    ("finetune_classifier", RESUME_TARGETS[1],
     "resources/resume/finetune_classifier/pt20/full",
     "logs/finetune_classifier/pt20/full.log"),
]  # fmt: skip


def holds(directory: Path, name: str) -> bool:
    """Whether a file `name` lies anywhere under `directory`, which a running job is writing:
    unlike `Path.rglob`, `os.walk` skips a temporary directory renamed away mid-walk."""
    return any(name in files for _, _, files in os.walk(directory))


def kill_once_a_state_is_saved(work: Path, configfile: Path, rule: str, target: str, state: Path):
    """Re-run `rule`'s job for `target` and SIGKILL Snakemake and the job once a state exists."""
    process = start(
        work, target, "--forcerun", rule, configfile=configfile
    )  # targets first: --forcerun takes a list
    deadline = time.monotonic() + 600
    while not holds(state, "state.json"):
        assert process.poll() is None, f"{rule} ended before saving a state"
        assert time.monotonic() < deadline, f"{rule} saved no state in 600 s"
        time.sleep(0.02)
    kill_tree(process)


@pytest.mark.parametrize(("rule", "target", "state", "log"), JOBS, ids=[j[0] for j in JOBS])
def test_a_killed_training_job_resumes_from_its_state(
    resume_reference, tmp_path, rule, target, state, log
):
    run, configfile = resume_reference
    work = shutil.copytree(run, tmp_path / "run", symlinks=True)
    kill_once_a_state_is_saved(work, configfile, rule, target, work / state)
    assert any((work / state).rglob("state.safetensors"))
    assert snakemake(work, "--unlock", configfile=configfile).returncode == 0
    again = snakemake(work, target, configfile=configfile, timeout=1800)
    assert again.returncode == 0, again.stderr[-5000:]
    assert_resumed(work / log)
    assert not (work / state).exists()  # removed once the outputs are written
    assert_same_weights(work, run, target)
