"""Convert one GGUF LM (θ0 or a judge) into the safetensors directory a hub model would be.

The Snakemake `script:` of rule convert_model.
"""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # tracebacks land in the rule's log

from lmlerp import jobs

i, o, p = jobs.start(snakemake)  # failures from here on end the log with a diagnosis

from lmlerp.data import tasks

tasks.convert_model(gguf_file=i.gguf, out_dir=o.dir, **p)
