"""Label sentences for the 3-class sentiment judge from their mean rating.

The Snakemake `script:` of rule prepare_judge_data.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.prepare_judge_data(movie_table=i.movie, vader=i.vader, judge_data=o.judge_data, **p)
