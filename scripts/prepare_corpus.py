"""Split Wikipedia + Lee news into disjoint corpora for θ0, θC4 and prompts.

The Snakemake `script:` of rule prepare_corpus.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.prepare_corpus(gensim=i.gensim, corpus_table=o.corpus, **p)
