# Pretrain a small GPT-2 (θ0) and an independent twin (θC4), fine-tune θ0 into θ+ and θ− on
# positive and negative movie sentences, walk the weight space between them (g1, g2, g3, and
# DExperts in output space), sample and score text at every point, measure mode connectivity
# between seeds, draw the paper's figures. Rofin et al. 2022, https://arxiv.org/abs/2211.12092.
# The stages, in DAG order, one file each under workflow/rules/; outputs: results/, resources/.
from snakemake.utils import min_version

min_version("9.0")


# The offline default, unless configs are given with --configfile: then they alone are the config
# (configs/paper.yaml is complete; a partial file goes after it: --configfile config.yaml my.yaml).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/hub.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/judges.smk"
include: "workflow/rules/evaluate.smk"


if CONNECTIVITY:  # optional: the config's `connectivity` section

    include: "workflow/rules/connectivity.smk"


include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
