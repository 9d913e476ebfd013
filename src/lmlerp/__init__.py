"""lmlerp: linear (and curved) interpolation between fine-tuned language models.

Reproduces Rofin et al. 2022, "Linear Interpolation In Parameter Space is Good Enough for
Fine-Tuned Language Models" (https://arxiv.org/abs/2211.12092). The Snakemake workflow says what
is built; this package says how.
"""

__version__ = "0.1.0"
