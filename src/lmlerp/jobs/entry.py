"""The first lines of every Snakemake job: readable failures, fixed threads, its own device.

A `script:` sends stderr to its log, then calls `start(snakemake)` and hands the job's named
inputs, outputs and params by keyword to one library function. Torch jobs begin with `setup`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lmlerp.jobs import devices, failure

# cuBLAS picks its reduction split per call unless its workspace is fixed: with deterministic
# algorithms on, torch raises on the first CUDA matmul without one of these two settings
# (https://docs.nvidia.com/cuda/cublas/index.html#results-reproducibility). ":4096:8" is eight
# 4 MiB buffers (32 MiB per stream); ":16:8" is smaller and slower.
CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")


def start(smk: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Install the failure diagnosis of job `smk.rule`; return (input, output, params as a dict).

    Params travel as a dict so that a script can pass them on with `**params`: every config
    value a rule uses reaches the library through its `params:` (Snakemake re-runs on a change).
    The `code` param (the script's code fingerprint, `lmlerp.jobs.code`) only triggers re-runs
    and is dropped: a script that needs it reads `smk.params.code`.
    """
    failure.install(smk.rule)
    return smk.input, smk.output, {k: v for k, v in smk.params.items() if k != "code"}


def deterministic(threads: int) -> None:
    """Fix the sources of run-to-run variation: thread count, kernel choice, cuBLAS workspace.

    `CUBLAS_WORKSPACE_CONFIG` is set (":4096:8", unless it already holds a deterministic value)
    before torch touches CUDA: cuBLAS reads it when a process creates its first handle, so a
    value set after CUDA work would pass torch's check without making matmuls reproducible —
    that case is an error.
    """
    configured = os.environ.get(CUBLAS_ENV)
    if configured not in CUBLAS_DETERMINISTIC:
        torch_cuda = sys.modules.get("torch.cuda")
        if torch_cuda is not None and torch_cuda.is_initialized():
            raise RuntimeError(
                f"{CUBLAS_ENV}={configured!r} and CUDA is already initialised: call "
                f"jobs.deterministic before any CUDA work, or export {CUBLAS_ENV}=:4096:8"
            )
        os.environ[CUBLAS_ENV] = CUBLAS_DETERMINISTIC[0]
    import torch  # here: the torch-free jobs (selection, tables) start in a fraction of a second

    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)


def setup(threads: int, device: str = "cpu") -> str:
    """`deterministic(threads)`, then claim this job's device (`devices.claim`) and return it."""
    deterministic(threads)
    return devices.claim(device)
