"""Draw the paper's Fig 11: the pretraining loss of θC4 (GPT-C4) and θ0 against the step.

The Snakemake `script:` of rule plot_pretraining.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.report import tasks

tasks.plot_pretraining(losses=list(i.losses), figure=o.fig11, **p)
