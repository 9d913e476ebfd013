"""Per-tensor weight-difference norms behind the paper's Fig 9.

The Snakemake `script:` of rule weight_norms.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.space import tasks

tasks.weight_norms(base=i.base, tuned=i.tuned, theta_c4=i.theta_c4, norms=o.norms, **p)
