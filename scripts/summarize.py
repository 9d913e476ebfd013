"""Collect the numbers of every stage into results/summary.json.

The Snakemake `script:` of rule summarize.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.report import tasks

tasks.summarize(inputs=dict(i.items()), summary_json=o.summary, **p)
