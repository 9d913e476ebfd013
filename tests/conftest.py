"""Session fixtures shared by the workflow tests: one uninterrupted tiny-config run, made once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from workflow_helpers import prepare_workdir, snakemake


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
