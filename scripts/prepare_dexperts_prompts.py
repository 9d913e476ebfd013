"""Sample the DExperts sentiment prompts plus the fixed ones.

The Snakemake `script:` of rule prepare_prompts.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.prepare_dexperts_prompts(
    neutral=i.neutral, positive=i.positive, negative=i.negative, tokenizer=i.tokenizer,
    prompts_table=o.prompts, **p,
)  # fmt: skip
