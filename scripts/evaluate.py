"""Evaluate one chunk of path points: rebuild, sample, score (Snakemake `script:` entrypoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from lmlerp import atomic, checkpoints, devices, evaluation, failure, training

failure.install(snakemake.rule)

p = snakemake.params
training.deterministic(snakemake.threads)
device = devices.claim(p.device)  # this job's own GPU when several run at once
base_dirs = {name: snakemake.input[name] for name in p.bases}
bases = {name: checkpoints.load(path).to(device) for name, path in base_dirs.items()}
tokenizer, judges, data = evaluation.load_inputs(  # read every input before writing anything
    snakemake.input, p.settings, p.scorers, device, p.dtype
)
weights = bases if p.settings["materialize"] == "weights" else None
evaluation.write_recipes(p.family, p.points, base_dirs, Path(snakemake.output.recipes), weights)
samples, points = evaluation.evaluate_chunk(
    p.family,
    p.points,
    bases,
    tokenizer,
    judges,
    data,
    p.sampling,
    p.settings,
    p.filter_p,
    device=str(device),
    dtype=p.dtype,
)
atomic.write_parquet(snakemake.output.samples, samples)
atomic.write_parquet(snakemake.output.points, points)
