"""Fine-tune θ0 on positive or negative sentences with one grid candidate (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, checkpoints, devices, failure, finetuning, tokenizer, training

failure.install(snakemake.rule)

p = snakemake.params
training.deterministic(snakemake.threads)
device = devices.claim(p.device)  # this job's own GPU when several run at once
bpe = tokenizer.load(snakemake.input.theta0)
model = checkpoints.load(snakemake.input.theta0)
movie = pd.read_parquet(snakemake.input.movie)
model, history, metrics = finetuning.run(
    model, bpe, movie, p.sentiment, p.candidate, p.hp, device, p.dtype
)
atomic.write_parquet(snakemake.output.loss, history)
atomic.write_json(snakemake.output.metrics, {**p.candidate, **metrics})
checkpoints.save(model, bpe, snakemake.output.model)
