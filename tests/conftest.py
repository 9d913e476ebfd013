"""Session fixtures shared by the workflow tests: one uninterrupted tiny-config run, made once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from workflow_helpers import RESUME_TARGETS, TINY, prepare_workdir, snakemake


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine lose ≈10× to them
    (a module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A complete local run of the tiny config (the reference other runs are compared with).

    $LMLERP_TINY_RUN may name a finished run of the current code to reuse (it is only read).
    """
    if os.environ.get("LMLERP_TINY_RUN"):
        return Path(os.environ["LMLERP_TINY_RUN"])
    work = prepare_workdir(tmp_path_factory.mktemp("tiny"))
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-5000:]
    return work


@pytest.fixture(scope="session")
def summary(tiny_run) -> dict:
    return json.loads((tiny_run / "results" / "summary.json").read_text())


def pytest_collection_modifyitems(config, items):
    """Skip the `cuda` tests where torch sees no CUDA device (imported only if one is marked)."""
    marked = [item for item in items if "cuda" in item.keywords]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in marked:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def resume_reference(tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted run of the tiny config with budgets long enough to kill a training job
    between two resume states (pretraining 240 steps, a state every 40; classifiers 60 steps,
    a checkpoint every 15), for the targets of `RESUME_TARGETS`; and its config file.
    $LMLERP_RESUME_RUN may name such a finished run to reuse."""
    if os.environ.get("LMLERP_RESUME_RUN"):  # a finished run of this fixture, only read
        work = Path(os.environ["LMLERP_RESUME_RUN"])
        return work, work / "config.yaml"
    work = prepare_workdir(tmp_path_factory.mktemp("resume-reference"))
    config = yaml.safe_load(TINY.read_text())
    config["pretrain"].update(steps=240, checkpoint_every=40)
    config["connectivity"]["finetune"].update(steps=60, checkpoint_every=15)
    configfile = work / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    done = snakemake(work, *RESUME_TARGETS, configfile=configfile, timeout=1800)
    assert done.returncode == 0, done.stderr[-5000:]
    return work, configfile
