"""Session fixtures shared by the workflow tests: one uninterrupted tiny-config run, made once."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from workflow_helpers import RESUME_TARGETS, TINY, copy_run, prepare_workdir, snakemake


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine lose ≈10× to them
    (a module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def under_xdist() -> bool:
    """Whether this process is a pytest-xdist worker (whose siblings share the temporary root)."""
    return "PYTEST_XDIST_WORKER" in os.environ


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The directory `name`, made by `build` once per session rather than once per worker.

    Under pytest-xdist the first worker to ask builds it in the workers' common temporary root
    while the others wait on a lock; a failed build fails every worker with its message, instead
    of being tried again. The directory is only read afterwards.
    """
    if not under_xdist():
        work = tmp_path_factory.mktemp(name)
        build(work)
        return work
    root = tmp_path_factory.getbasetemp().parent
    work, failed = root / name, root / f"{name}.failed"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.exists():
            pytest.fail(f"building {name} failed on another worker:\n{failed.read_text()}")
        if not (root / f"{name}.done").exists():
            work.mkdir()
            try:
                build(work)
            except BaseException as error:
                failed.write_text(str(error))
                raise
            (root / f"{name}.done").touch()
    return work


def run_tiny(work: Path) -> None:
    result = snakemake(prepare_workdir(work))
    assert result.returncode == 0, result.stderr[-5000:]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A complete local run of the tiny config (the reference other runs are compared with),
    built once per session; each worker gets its own copy, since some tests run Snakemake in it.

    $LMLERP_TINY_RUN may name a finished run of the current code to reuse (it is only read).
    """
    if os.environ.get("LMLERP_TINY_RUN"):
        return Path(os.environ["LMLERP_TINY_RUN"])
    built = built_once(tmp_path_factory, "tiny", run_tiny)
    return copy_run(built, tmp_path_factory.mktemp("tiny") / "run") if under_xdist() else built


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
    a checkpoint every 15), for the targets of `RESUME_TARGETS`; and its config file. Built once
    per session and only read: its tests copy it.
    $LMLERP_RESUME_RUN may name such a finished run to reuse."""
    if os.environ.get("LMLERP_RESUME_RUN"):  # a finished run of this fixture, only read
        work = Path(os.environ["LMLERP_RESUME_RUN"])
        return work, work / "config.yaml"
    work = built_once(tmp_path_factory, "resume-reference", run_resume_reference)
    return work, work / "config.yaml"


def run_resume_reference(work: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["pretrain"].update(steps=240, checkpoint_every=40)
    config["connectivity"]["finetune"].update(steps=60, checkpoint_every=15)
    configfile = prepare_workdir(work) / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    done = snakemake(work, *RESUME_TARGETS, configfile=configfile, timeout=1800)
    assert done.returncode == 0, done.stderr[-5000:]
