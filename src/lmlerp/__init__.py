"""lmlerp: linear (and curved) interpolation between fine-tuned language models.

Reproduces Rofin et al. 2022, "Linear Interpolation In Parameter Space is Good Enough for
Fine-Tuned Language Models" (https://arxiv.org/abs/2211.12092). The Snakemake workflow says what
is built; this package says how, one sub-package per stage of the DAG:

    config        the closed schema and the cross-key checks, run before any job
    data          offline assets, hub sources, movie / corpus tables, BPE, prompt sets
    train         pretraining θ0 and θC4, fine-tuning θ+ and θ−, candidate selection
    space         path families and grids, the checked fp32 combination, recipes, norms
    generate      exact nucleus sampling, plain and DExperts logit combiners, the sampler
    score         the sentiment, grammar and judge-LM plug-ins and the text metrics
    evaluate      a chunk of path points rebuilt in memory, sampled and scored
    connectivity  seed classifiers, barriers (BH, CG, ICG), Bezier curves, tables
    report        figures and results/summary.json

and two that every stage uses: `io` (atomic files, safetensors checkpoints, tokenizers) and `jobs`
(a job's start-up, its GPU, its failure diagnosis). Each stage's `tasks` module holds the
functions the workflow's scripts call, file in, file out.
"""

__version__ = "0.1.0"
