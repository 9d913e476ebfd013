"""Keep the fine-tuning candidate with the best validation perplexity (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import json

from lmlerp import atomic, failure, selection

failure.install(snakemake.rule)

results = [
    {"candidate": name, **json.loads(open(path).read())}
    for name, path in zip(snakemake.params.candidates, snakemake.input.metrics, strict=True)
]
table = selection.select(results)
best = snakemake.params.candidates.index(table.candidate[table.selected].item())
atomic.write_tsv(snakemake.output.table, table)
atomic.link_copy(snakemake.input.models[best], snakemake.output.model)
