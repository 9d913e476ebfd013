"""Resumable training: the whole state of a run every k steps, so a killed job continues.

A state holds what the next step depends on — weights, AdamW's moments, the lr scheduler, every
RNG (torch CPU and CUDA, numpy, Python) and the loss curve so far — and the step, which is also
the data position: each batch source is a pure function of (seed, first step), and fast-forwards
its torch.Generator by the draws of the skipped batches (`lmlerp.train.batches`). Restoring it
and running on gives bit-identical weights to the uninterrupted run.

Layout of a state directory (written atomically, replaced whole at each save):
    state.safetensors  model.<name>, optimizer.<param index>.<key>, rng.torch, rng.cuda.<i>,
                       rng.numpy — every tensor, never a pickle
    state.json         key, step, loss curve, optimizer param groups and scalars, scheduler,
                       Python's and numpy's RNG scalars
The `key` is a digest of the job's params, inputs and code: a state saved for another one is
ignored (and logged), never resumed from.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lmlerp.io import atomic, digests

DEFAULT_EVERY = 500  # steps between states: GPT-2 Large writes ≈9 GB per state (weights + AdamW)


def key(params: Mapping[str, Any], inputs: Sequence[str | Path], code: str) -> str:
    """The digest a state is saved under: the job's params, its inputs' bytes and its code."""
    return digests.digest({"params": params, "inputs": digests.files_digest(inputs), "code": code})


def for_job(
    directory: str | Path | None,
    every: int,
    params: Mapping[str, Any],
    inputs: Sequence[str | Path],
    code: str,
) -> Resume | None:
    """The Resume of one Snakemake job (None without a directory: no states saved)."""
    if directory is None:
        return None
    return Resume(Path(directory), every, key(params, inputs, code))


@dataclass(frozen=True)
class Resume:
    """Where and how often one training run saves its state, and the key it must match."""

    directory: Path
    every: int
    key: str

    def due(self, step: int, last: int) -> bool:
        """Whether to save after step `step` (1-based) of `last`: every k-th, never the last
        (the job's outputs are then written and the state removed)."""
        return step % self.every == 0 and step < last

    def save(self, step: int, model, optimizer, scheduler, rows: list[dict]) -> None:
        """Write the state after `step` optimizer steps, replacing the previous one atomically."""
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        optim = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, values in optim["state"].items():
            for name, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{index}.{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        tensors.update(_rng_tensors())
        tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
        numpy_state = np.random.get_state()
        record = {
            "key": self.key,
            "step": step,
            "rows": rows,
            "optimizer": {"param_groups": optim["param_groups"], "scalars": scalars},
            "scheduler": scheduler.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": [numpy_state[0], *map(_plain, numpy_state[2:])],
            },
        }
        text = json.dumps(record)  # before writing: a value JSON cannot hold fails here
        with atomic.atomic_path(self.directory, directory=True) as tmp:
            save_file(tensors, tmp / "state.safetensors")
            (tmp / "state.json").write_text(text)

    def restore(self, model, optimizer, scheduler) -> tuple[int, list[dict]]:
        """Load the saved state into model, optimizer, scheduler and the RNGs; return (step, loss
        rows). (0, []) without a state, or with one saved under another key (logged)."""
        record = self._record()
        if record is None:
            return 0, []
        tensors = load_file(self.directory / "state.safetensors")
        model.load_state_dict(_prefixed(tensors, "model."), strict=True)
        optimizer.load_state_dict(_optimizer_state(record["optimizer"], tensors))
        scheduler.load_state_dict(record["scheduler"])
        _set_rngs(record["rng"], tensors)
        log(f"resuming from step {record['step']} ({self.directory})")
        return record["step"], record["rows"]

    def _record(self) -> dict | None:
        """The saved state's JSON if it is whole and has this run's key, else None (logged)."""
        path = self.directory / "state.json"
        if not path.is_file() or not (self.directory / "state.safetensors").is_file():
            return None
        record = json.loads(path.read_text())
        if record.get("key") != self.key:
            log(
                f"ignoring the resume state in {self.directory}: saved for key "
                f"{str(record.get('key'))[:12]}, this job's params, inputs or code give "
                f"{self.key[:12]}; starting from step 0"
            )
            return None
        return record

    def clear(self) -> None:
        """Remove the state (the job's outputs are written), and what a writer killed while
        saving one left beside it."""
        shutil.rmtree(self.directory, ignore_errors=True)
        atomic.remove_stale_temporaries(self.directory)


def log(message: str) -> None:
    """A line in the job's log (its stderr)."""
    print(f"lmlerp: {message}", file=sys.stderr, flush=True)


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as JSON lists and numbers."""
    return (
        value.tolist() if isinstance(value, np.ndarray) else getattr(value, "item", lambda: value)()
    )


def _rng_tensors() -> dict[str, torch.Tensor]:
    """torch's CPU and CUDA generator states, and numpy's MT19937 key, as tensors."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    tensors["rng.numpy"] = torch.from_numpy(np.random.get_state()[1].astype(np.int64))
    return tensors


def _set_rngs(rng: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Put every generator back where the saved run had it."""
    torch.set_rng_state(tensors["rng.torch"])
    cuda = _prefixed(tensors, "rng.cuda.")
    cuda = [cuda[i] for i in sorted(cuda, key=int)]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))
    kind, *rest = rng["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), *rest))


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_state(saved: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict:
    """The optimizer's `state_dict` rebuilt from its flattened tensors and JSON scalars."""
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in _prefixed(tensors, "optimizer.").items():
        index, field = name.split(".", 1)
        state.setdefault(int(index), {})[field] = tensor
    for index, values in saved["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [
        {**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in saved["param_groups"]
    ]
    return {"state": state, "param_groups": groups}
