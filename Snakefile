# Train a small GPT-2 (θ0) and an independent twin (θC4), fine-tune θ0 into θ+ and θ− on positive
# and negative movie sentences, train the sentiment judge, and collect the numbers.
# Rofin et al. 2022, https://arxiv.org/abs/2211.12092. Outputs: results/, resources/, logs/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/hub.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/connectivity.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        final_outputs(),
