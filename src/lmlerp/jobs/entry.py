"""The first lines of every Snakemake job: readable failures, fixed threads, its own device.

A `script:` sends stderr to its log, then calls `start(snakemake)` and hands the job's named
inputs, outputs and params by keyword to one library function. Torch jobs begin with `setup`.
"""

from __future__ import annotations

from typing import Any

from lmlerp.jobs import devices, failure


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
    """Fix the sources of run-to-run variation on the CPU: thread count and kernel choice."""
    import torch  # here: the torch-free jobs (selection, tables) start in a fraction of a second

    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)


def setup(threads: int, device: str = "cpu") -> str:
    """`deterministic(threads)`, then claim this job's device (`devices.claim`) and return it."""
    deterministic(threads)
    return devices.claim(device)
