"""Loss and accuracy along the line between two seeds at every checkpoint; barriers (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, classifier, curves, lmc, tokenizer

p, i = snakemake.params, snakemake.input
seeds = [f"{i.checkpoints}/seed{seed}" for seed in p.seeds]
bpe = tokenizer.load(next(iter(classifier.saved_steps(seeds[0]).values())))
_, held_out = classifier.task_examples(p.data, pd.read_parquet(i.movie), p.data["eval_examples"])
batches = classifier.held_out_batches(bpe, held_out, p.max_length, p.data["eval_batch_size"])
ts = curves.grid(p.data["path_points"])
curve = curves.seed_pair_lines(seeds, ts, lambda model: classifier.evaluate(model, batches))
atomic.write_parquet(snakemake.output.curves, curve)
atomic.write_parquet(snakemake.output.barriers, lmc.barriers(curve))
