"""Resources: a job that runs out of disk (a real 256 KiB tmpfs) or memory (RLIMIT_AS) fails with
one readable last line in its log and leaves no output and no temporary file behind.

The jobs are the real `scripts/weight_norms.py`, run in a subprocess with a stand-in for the
`snakemake` object that Snakemake injects.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmlerp.data import bpe as bpe_training
from lmlerp.io import atomic, checkpoints
from lmlerp.jobs import failure
from lmlerp.train import pretrain

REPO = Path(__file__).resolve().parents[1]
TEXTS = [f"The {noun} was {adj} today." for noun in ("movie", "film", "plot") for adj in "ab"]
RUNNER = """
import json, re, resource, runpy, sys, types
import pandas, torch, transformers
from lmlerp import jobs
from lmlerp.space import tasks

class Named(dict):
    __getattr__ = dict.__getitem__

job = json.loads(sys.argv[1])
snakemake = types.SimpleNamespace(
    input=Named(job["input"]), output=Named(job["output"]), log=[job["log"]],
    params=Named(job["params"]), wildcards=Named({}), threads=1, rule="weight_norms",
)
if job["memory_margin_mb"]:  # address space = what the imports took + a small margin
    status = open("/proc/self/status").read()
    size = int(re.search(r"VmSize:\\s+(\\d+) kB", status).group(1)) * 1024
    limit = size + job["memory_margin_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
runpy.run_path(job["script"], init_globals={"snakemake": snakemake}, run_name="__main__")
"""


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs (needs root; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mount], check=False)
    if done.returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", mount], check=True)


def fill(directory: Path) -> None:
    """Use up every free block of `directory`'s file system."""
    try:
        with open(directory / "filler", "wb", buffering=0) as handle:
            while True:
                handle.write(b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "filler")


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=280, min_frequency=1)


def bases(bpe, directory: Path, n_embd: int) -> dict[str, str]:
    """θ0 (the base), θ+ (its fine-tuning) and θC4 of one width, as weight_norms reads them."""
    arch = {"n_layer": 2, "n_head": 2, "n_embd": n_embd, "n_positions": 32}
    found = {}
    for seed, name in enumerate(["base", "tuned", "theta_c4"]):
        found[name] = str(directory / name)
        checkpoints.save(pretrain.gpt2(len(bpe), bpe.eos_token_id, arch, seed), bpe, found[name])
    return found


def run_weight_norms(inputs: dict, output: Path, log: Path, memory_margin_mb: int = 0):
    job = {
        "script": str(REPO / "scripts" / "weight_norms.py"),
        "input": inputs,
        "output": {"norms": str(output)},
        "params": {"base_name": "θ0", "tuned_name": "θ+"},
        "log": str(log),
        "memory_margin_mb": memory_margin_mb,
    }
    return subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(job)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("writer", ["parquet", "json", "checkpoint"])
def test_full_disk_fails_naming_the_file_and_keeps_nothing(full_disk, bpe, writer):
    final = full_disk / f"out.{writer}"
    with pytest.raises(OSError) as error:
        if writer == "parquet":
            atomic.write_parquet(final, pd.DataFrame({"x": np.arange(100_000, dtype=float)}))
        elif writer == "json":
            atomic.write_json(final, list(range(100_000)))
        else:
            arch = {"n_layer": 2, "n_head": 2, "n_embd": 128, "n_positions": 32}  # ≈ 1.7 MB
            checkpoints.save(pretrain.gpt2(len(bpe), bpe.eos_token_id, arch, 0), bpe, final)
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(final)
    assert leftovers(full_disk) == []  # neither the output nor its temporary
    assert failure.diagnosis(error.value).startswith(
        f"no space left on device while writing {final}"
    )


def test_job_on_a_full_disk_ends_its_log_with_one_clear_line(full_disk, bpe, tmp_path):
    inputs = bases(bpe, tmp_path, n_embd=32)
    output, log = full_disk / "weight_norms.parquet", tmp_path / "weight_norms.log"
    fill(full_disk)
    result = run_weight_norms(inputs, output, log)
    assert result.returncode != 0
    last = log.read_text().strip().splitlines()[-1]
    assert last.startswith(
        f"lmlerp: weight_norms failed: no space left on device while writing {output}"
    )
    assert leftovers(full_disk) == []


def test_job_out_of_memory_ends_its_log_with_one_clear_line(bpe, tmp_path):
    inputs = bases(bpe, tmp_path, n_embd=256)  # three ≈ 7 MB models, loaded with a 4 MB margin
    output, log = tmp_path / "out" / "weight_norms.parquet", tmp_path / "weight_norms.log"
    result = run_weight_norms(inputs, output, log, memory_margin_mb=4)
    assert result.returncode != 0
    text = log.read_text()
    assert text.strip().splitlines()[-1].startswith("lmlerp: weight_norms failed: out of memory")
    assert not output.parent.exists() or leftovers(output.parent) == []


def test_same_job_with_enough_memory_and_disk_succeeds(bpe, tmp_path):
    """The control: the same runner and inputs, no limit, write the table."""
    inputs = bases(bpe, tmp_path, n_embd=32)
    output, log = tmp_path / "out" / "weight_norms.parquet", tmp_path / "weight_norms.log"
    result = run_weight_norms(inputs, output, log)
    assert result.returncode == 0, log.read_text()[-2000:]
    assert len(pd.read_parquet(output)) > 0


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (MemoryError(), "out of memory"),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"), "out of memory"),
        (OSError(errno.ENOSPC, "No space left on device", "a.parquet"), "no space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded"),
        (ValueError("bad value"), None),
    ],
)
def test_diagnosis_recognises_resource_errors_only(error, start):
    line = failure.diagnosis(error)
    assert line is None if start is None else line.startswith(start)


def test_diagnosis_follows_the_cause_chain():
    try:
        try:
            raise MemoryError
        except MemoryError as inner:
            raise ValueError("could not read the table") from inner
    except ValueError as outer:
        assert failure.diagnosis(outer).startswith("out of memory")
