"""Fetch one DExperts prompt file from a URL or a local path, checking its sha256.

The Snakemake `script:` of rule fetch_prompts.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.fetch_prompts(prompts_file=o.prompts, **p)
