"""Collect the measured numbers of every stage into results/summary.json (Snakemake)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from lmlerp import atomic, failure, summary

failure.install(snakemake.rule)

i = snakemake.input
result = {
    "models": summary.models(i.pretrain_metrics, i.selections, snakemake.params.pretrained),
    "judge": summary.read_json(i.judge_metrics) if hasattr(i, "judge_metrics") else {},
    "sources": snakemake.params.sources,
    **summary.experiments(i.tables, snakemake.params.families),
    "connectivity": summary.connectivity(i.connectivity, i.curves),
    "timings_s": summary.stage_timings(snakemake.params.benchmarks),
}
atomic.write_json(snakemake.output.summary, result)
