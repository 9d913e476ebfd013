"""Convert the SmolLM2 GGUF shipped on PyPI into safetensors, once.

The Snakemake `script:` of rule convert_judge_lm.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.score import tasks

tasks.convert_judge_lm(asset=i.asset, model_dir=o.model, **p)
