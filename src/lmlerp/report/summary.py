"""results/summary.json: the numbers a reader (or a test) checks, gathered from every stage."""

from __future__ import annotations

import glob as glob_module
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lmlerp.connectivity import tables as connectivity_tables
from lmlerp.data.hub import describe
from lmlerp.io import atomic
from lmlerp.train import selection


def models(
    pretrain_metrics: Sequence[str], selections: Sequence[str], pretrained: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per-model metrics: pretrained models by name, fine-tuned ones from their selection table.

    `selections` are the candidate tables of θ+ then θ−; the selected row becomes theta_pos /
    theta_neg with its candidate name and NLLs on positive and negative validation sentences.
    """
    out = {
        name: atomic.read_json(path)
        for name, path in zip(pretrained, pretrain_metrics, strict=True)
    }
    for name, path in zip(("theta_pos", "theta_neg"), selections, strict=True):
        table = pd.read_csv(path, sep="\t")
        best = table[table.candidate == selection.selected(table, str(path))].iloc[0]
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


_WILDCARD = re.compile(r"\{(\w+)(?:,([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")


def benchmark_files(pattern: str, constraints: Mapping[str, str]) -> list[Path]:
    """The files on disk that match a rule's `benchmark:` pattern, e.g.
    ``benchmarks/finetune/{sentiment}/{candidate}.tsv``, in sorted order.

    A wildcard matches its regex in `constraints` (those of the config's DAG, so that files of
    jobs the config no longer has are not counted), else its inline constraint, else any name.
    """
    regex, glob, end = "", "", 0
    for match in _WILDCARD.finditer(pattern):
        literal = pattern[end : match.start()]
        name, inline = match.group(1), match.group(2)
        regex += re.escape(literal) + f"(?:{constraints.get(name, inline or '[^/]+')})"
        glob += literal + "*"
        end = match.end()
    regex += re.escape(pattern[end:])
    glob += pattern[end:]
    found = glob_module.glob(glob) if "*" in glob else [glob] if Path(glob).exists() else []
    return sorted(Path(p) for p in found if re.fullmatch(regex, p))


def stage_timings(
    benchmarks: Mapping[str, str], constraints: Mapping[str, str]
) -> dict[str, float]:
    """Wall seconds per rule, summed over its jobs' `benchmark:` files, plus their total.

    `benchmarks` maps each rule to its benchmark pattern (`benchmark_files`). The total is the
    sum of job times, not the wall time of a parallel run.
    """
    timings: dict[str, float] = {}
    for rule, pattern in benchmarks.items():
        for path in benchmark_files(pattern, constraints):
            seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
            timings[rule] = round(timings.get(rule, 0.0) + seconds, 2)
    timings["total_job_seconds"] = round(sum(timings.values()), 2)
    return timings


# What summary.json says of each base and judge that this workflow builds itself.
BUILT_HERE = {
    "theta0": "pretrained here",
    "reference": "θ0",
    "sentiment": "TF-IDF judge trained here",
    "grammar": "Harper",
    "judge_lm": "SmolLM2-135M (GGUF converted here)",
}


def provenance(
    hub_models: Mapping[str, Mapping[str, Any]], decorrelated: bool = True
) -> dict[str, str]:
    """Where each base and judge comes from: built here, or its hub source (`hub.describe`).

    The reference is the decorrelated pair's first base: without that pair it has no entry.
    """
    names = [name for name in sorted(BUILT_HERE) if decorrelated or name != "reference"]
    return {
        name: describe(hub_models[name]) if name in hub_models else BUILT_HERE[name]
        for name in names
    }


# Per family: the coordinates and metrics that summary.json lists, one entry per point; every
# sample-based metric comes with its 95% bootstrap interval (key_lo, key_hi).
COORDINATES = {"g3": ("alpha", "beta")}
EXPERIMENT_METRICS = {
    "g3": ("positive_score", "perplexity", "nll_pos", "nll_neg"),
}
DEFAULT_METRICS = ("positive_score", "perplexity", "grammar", "distinct_2")
DROP_COUNTS = ("n_samples", "n_empty", "n_perplexity")


def _floats(column: pd.Series) -> list[float | None]:
    return [None if pd.isna(v) else float(v) for v in column]


def experiments(
    tables: Sequence[str], trends: Sequence[str], families: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """{family: {key: [value per point], "trends": {...}}} from the aggregated tables, pooled over
    prompt kinds (NaN → None); per-kind rows stay in the tables."""
    out = {}
    for family, path, trend in zip(families, tables, trends, strict=True):
        table = pd.read_parquet(path)
        table = table[table.kind == "all"]
        plane = ("alpha", "beta") if table.beta.notna().any() else ("alpha",)  # a 2-D merge family
        entry = {key: _floats(table[key]) for key in COORDINATES.get(family, plane)}
        for key in EXPERIMENT_METRICS.get(family, DEFAULT_METRICS):
            entry[key] = _floats(table[key])
            for bound in ("lo", "hi"):
                if f"{key}_{bound}" in table:
                    entry[f"{key}_{bound}"] = _floats(table[f"{key}_{bound}"])
        entry.update({key: [int(v) for v in table[key]] for key in DROP_COUNTS})
        entry["trends"] = atomic.read_json(trend)
        out[family] = entry
    return out


def connectivity(barriers: str, curves: Sequence[str], data: str) -> dict[str, Any]:
    """The "connectivity" block: barriers per model and checkpoint step (mean, min, max over
    seed pairs), Δ and |Δ|, the data records (drop counts), and curve vs line."""
    curve_table = pd.concat([pd.read_parquet(path) for path in curves], ignore_index=True)
    return connectivity_tables.summary(
        pd.read_parquet(barriers), curve_table, atomic.read_json(data)
    )
