"""Fine-tune a classifier from a pretrained model once per seed, fully or with LoRA (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import pandas as pd

from lmlerp import atomic, classifier, tokenizer, training

p = snakemake.params
training.deterministic(snakemake.threads)
bpe = tokenizer.load(p.source)
train, _ = classifier.task_examples(p.data, pd.read_parquet(snakemake.input.movie))
lora = p.lora if snakemake.wildcards.method == "lora" else None
history = classifier.finetune_seeds(
    p.source, bpe, train, p.hp, p.seeds, classifier.num_labels(p.data["task"]),
    snakemake.output.checkpoints, lora, p.device, p.dtype,
)  # fmt: skip
atomic.write_parquet(snakemake.output.loss, history)
