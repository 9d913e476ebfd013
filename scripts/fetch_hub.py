"""Fetch one hub model or dataset (or its local stand-in) into resources/hub/.

The Snakemake `script:` of rule fetch_model, fetch_encoder and fetch_dataset.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.fetch_hub(out_dir=o.dir, **p)
