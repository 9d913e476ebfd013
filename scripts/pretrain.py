"""Pretrain θ0 or θC4 from scratch on its own corpus (Snakemake `script:` entrypoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, checkpoints, devices, failure, pretraining, tokenizer, training

failure.install(snakemake.rule)

p = snakemake.params
training.deterministic(snakemake.threads)
device = devices.claim(p.device)  # this job's own GPU when several run at once
bpe = tokenizer.load(snakemake.input.tokenizer)
corpus = pd.read_parquet(snakemake.input.corpus)
model, history, metrics = pretraining.run(
    corpus, snakemake.wildcards.model, bpe, p.arch, p.hp, p.seed, device, p.dtype
)
atomic.write_parquet(snakemake.output.loss, history)
atomic.write_json(snakemake.output.metrics, metrics)
checkpoints.save(model, bpe, snakemake.output.model)
