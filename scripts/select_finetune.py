"""Keep the fine-tuning candidate with the best validation perplexity.

The Snakemake `script:` of rule select_finetune.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.train import tasks

tasks.select_candidate(metrics=i.metrics, models=i.models, table=o.table, model_dir=o.model, **p)
