"""C4 shards as GPT-C4's pretraining corpus, split into train / val.

The Snakemake `script:` of rule prepare_corpus.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.prepare_c4(c4=i.c4, corpus_table=o.corpus, **p)
