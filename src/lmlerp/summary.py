"""results/summary.json: the numbers a reader (or a test) checks, gathered from every stage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def read_json(path: str | Path) -> Any:
    """Load one JSON file."""
    return json.loads(Path(path).read_text())


def models(
    pretrain_metrics: Sequence[str], selections: Sequence[str], pretrained: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per-model metrics: pretrained models by name, fine-tuned ones from their selection table.

    `selections` are the candidate tables of θ+ then θ−; the selected row becomes theta_pos /
    theta_neg with its candidate name and NLLs on positive and negative validation sentences.
    """
    out = {name: read_json(path) for name, path in zip(pretrained, pretrain_metrics, strict=True)}
    for name, path in zip(("theta_pos", "theta_neg"), selections, strict=True):
        table = pd.read_csv(path, sep="\t")
        if table.selected.sum() != 1:
            raise ValueError(f"{path}: expected exactly one selected candidate")
        best = table[table.selected].iloc[0]
        out[name] = {
            key: (best[key].item() if hasattr(best[key], "item") else best[key])
            for key in (
                "candidate",
                "lr",
                "batch_size",
                "steps",
                "val_ppl",
                "nll_pos_val",
                "nll_neg_val",
            )
        }
    return out


def stage_timings(benchmarks: Sequence[str]) -> dict[str, float]:
    """Wall seconds per rule, summed over its jobs' `benchmark:` files, plus their total.

    Paths look like benchmarks/<rule>/<wildcards>.tsv. A file that is absent (a job that ran
    before benchmarking existed) is skipped. The total is the sum of job times, not the wall
    time of a parallel run.
    """
    timings: dict[str, float] = {}
    for path in map(Path, benchmarks):
        if not path.exists():
            continue
        rule = path.parts[path.parts.index("benchmarks") + 1]
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
        timings[rule] = round(timings.get(rule, 0.0) + seconds, 2)
    timings["total_job_seconds"] = round(sum(timings.values()), 2)
    return timings


# Per family: the coordinates and mean metrics that summary.json lists, one entry per point.
EXPERIMENT_KEYS = {
    "g1": ("alpha", "positive_score", "perplexity", "grammar", "distinct_2"),
    "g2": ("alpha", "positive_score", "perplexity", "grammar", "distinct_2"),
    "dexperts": ("alpha", "positive_score", "perplexity", "grammar", "distinct_2"),
    "decorrelated": ("alpha", "positive_score", "perplexity", "grammar", "distinct_2"),
    "g3": ("alpha", "beta", "positive_score", "perplexity", "nll_pos", "nll_neg"),
}


def experiments(tables: Sequence[str], families: Sequence[str]) -> dict[str, dict[str, list]]:
    """{family: {key: [value per point]}} from the aggregated tables (flat lists, NaN → None)."""
    out = {}
    for family, path in zip(families, tables, strict=True):
        table = pd.read_parquet(path)
        out[family] = {
            key: [None if pd.isna(v) else float(v) for v in table[key]]
            for key in EXPERIMENT_KEYS[family]
        }
    return out


def connectivity(barriers: str, curves: Sequence[str]) -> dict[str, Any]:
    """The "connectivity" block: barriers per model and checkpoint step, Δ, and curve vs line."""
    from lmlerp import lmc

    curve_table = pd.concat([pd.read_parquet(path) for path in curves], ignore_index=True)
    return lmc.summary(pd.read_parquet(barriers), curve_table)
