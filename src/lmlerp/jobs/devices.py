"""One GPU per job: claim a free CUDA device for the life of the process.

Locally Snakemake treats `gpu` as a counter: `snakemake --resources gpu=2` runs two GPU jobs at
once but tells neither which GPU to use (it sets no CUDA_VISIBLE_DEVICES), so both would land on
cuda:0. `claim("cuda")` gives each job its own: it walks the visible devices and takes the first
whose lock file it can lock with an exclusive, non-blocking `flock`. The lock is held until the
process exits — the kernel drops it then, even after SIGKILL, so a killed job never leaves a GPU
claimed. Lock files are named by host and by the physical id in CUDA_VISIBLE_DEVICES, so jobs that
see different subsets of the GPUs still agree on which is which.

Under SLURM (`SLURM_JOB_ID` set) a job submitted with `--gpus=1` sees exactly one GPU, which
the scheduler gave it: that is cuda:0 and nothing is locked (the lock directory may be shared by
jobs on many nodes, each of which sees its GPU as 0). Snakemake run inside a multi-GPU
allocation (`salloc --gpus=4`, then `--resources gpu=4`) claims as on a workstation, with the job
id in the lock names, because SLURM renumbers each job's GPUs from 0.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import IO

LOCK_DIR_ENV = "LMLERP_GPU_LOCK_DIR"
DEFAULT_LOCK_DIR = ".snakemake/gpu-locks"  # relative to the working directory of the workflow

_held: list[IO[str]] = []  # open lock files; closing one would release its GPU


class DeviceError(RuntimeError):
    """No device can be given to this job."""


def claim(
    device: str,
    *,
    count: int | None = None,
    lock_dir: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The torch device this job should use: "cpu" and "cuda:N" unchanged, "cuda" → a free "cuda:i".

    Args:
        device: the config's `device` (cpu | cuda | cuda:N).
        count: visible CUDA devices; default `torch.cuda.device_count()` (a parameter so that
            the claiming can be tested without GPUs).
        lock_dir: where the lock files live; default $LMLERP_GPU_LOCK_DIR, else
            `.snakemake/gpu-locks` of the working directory. Set the variable to one shared path
            when several workflows share a machine's GPUs.
        environ: the environment to read (default `os.environ`).

    Raises:
        DeviceError: CUDA is absent, or every visible GPU is claimed by another process.
        ValueError: `device` is none of the above.
    """
    if device == "cpu" or re.fullmatch(r"cuda:\d+", device):
        return device
    if device != "cuda":
        raise ValueError(f"device {device!r} is not cpu, cuda or cuda:N")
    env = os.environ if environ is None else environ
    count = _visible_count() if count is None else count
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if count < 1:
        raise DeviceError(
            f"device 'cuda' asked for, but torch sees no CUDA device (CUDA_VISIBLE_DEVICES="
            f"{visible!r}); install a CUDA build of torch or set device: cpu"
        )
    slurm_job = env.get("SLURM_JOB_ID")
    if slurm_job and count == 1:
        return "cuda:0"
    directory = Path(lock_dir or env.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    prefix = _safe(socket.gethostname()) + (f"-job{_safe(slurm_job)}" if slurm_job else "")
    for index, name in enumerate(_physical_ids(visible, count)):
        handle = open(directory / f"{prefix}-gpu{_safe(name)}.lock", "a")  # noqa: SIM115 (held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        return f"cuda:{index}"
    raise DeviceError(
        f"all {count} visible GPUs are claimed by other jobs (locks in {directory}); "
        f"run with --resources gpu=N, N <= {count}"
    )


def _visible_count() -> int:
    import torch  # here, not at module level: the claim itself needs no torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _physical_ids(visible: str | None, count: int) -> list[str]:
    """The physical id of each visible device: CUDA_VISIBLE_DEVICES' entries, else 0 … count−1."""
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return ids[:count] if len(ids) >= count else [str(i) for i in range(count)]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)
