"""Fine-tune the reference model (paper: DistilGPT-2) on positive sentences with θ+'s recipe.

The Snakemake `script:` of rule finetune_reference (paper scale: pair (a) of Fig 9).
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.train import tasks

tasks.finetune_reference(
    reference=i.reference, movie=i.movie, selection_table=i.selection, model_dir=o.model,
    loss_table=o.loss, metrics_json=o.metrics, threads=snakemake.threads,
    code=snakemake.params.code, **p,
)  # fmt: skip
