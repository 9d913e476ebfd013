"""Convert the SmolLM2 GGUF shipped on PyPI into a safetensors HF directory, once (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from lmlerp import failure, judge_lm

failure.install(snakemake.rule)

judge_lm.convert_gguf(Path(snakemake.input.asset) / "model.gguf", Path(snakemake.output.model))
