"""The jobs of the report stage: Figs 3–12, the connectivity figures, summary.json.

Torch and transformers (≈6 s to import) are imported only inside the tasks that need them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lmlerp.io import atomic
from lmlerp.report import summary

PathLike = str | os.PathLike
FAMILIES = ("g1", "g2", "g3", "decorrelated", "dexperts")


def plot(
    *, inputs: Mapping[str, PathLike], figures_out: Mapping[str, PathLike], words: Mapping
) -> None:
    """Figs 3–10 and the comparison of every family (fig12, and its table `comparison`) from the
    tables (`inputs`: one per family, merge families too, and norms) into `figures_out`.

    Figs 9 and 10 are drawn where `figures_out` asks for them: they need θC4, which only a config
    with paths.decorrelated has (the decorrelated table and the norms are then inputs).
    """
    from lmlerp.report import comparison, figures

    t = {name: pd.read_parquet(path) for name, path in inputs.items() if name != "norms"}
    drawn = {
        "fig03": figures.fig03_g1(t["g1"]),
        "fig04": figures.fig04_word_probabilities(t["g1"], words),
        "fig05": figures.fig05_g1_vs_g2(t["g1"], t["g2"]),
        "fig06": figures.fig06_dexperts_vs_weights(t["dexperts"], t["g2"]),
        "fig07": figures.fig07_g3(t["g3"]),
        "fig08": figures.fig08_g3_nll(t["g3"]),
        "fig12": comparison.figure(t),
    }
    if "fig09" in figures_out:
        drawn["fig09"] = figures.fig09_weight_norms(pd.read_parquet(inputs["norms"]))
    if "fig10" in figures_out:
        drawn["fig10"] = figures.fig10_decorrelated(t["decorrelated"])
    atomic.write_tsv(figures_out["comparison"], comparison.matched(t))
    for name, fig in drawn.items():
        figures.save(fig, figures_out[name])


def plot_pretraining(
    *, losses: Sequence[PathLike], models: Sequence[str], figure: PathLike
) -> None:
    """Fig 11: the pretraining loss curves (`losses`, one table per model in `models`)."""
    from lmlerp.report import figures

    table = pd.concat(
        pd.read_parquet(path).assign(model=name) for path, name in zip(losses, models, strict=True)
    )
    figures.save(figures.fig11_pretraining(table), figure)


def plot_connectivity(
    *, barriers: PathLike, curves: Sequence[PathLike], steps: PathLike, curves_figure: PathLike,
    pairs: Sequence[str],
) -> None:  # fmt: skip
    """Barriers against fine-tuning step, and loss along Bezier curves vs lines."""
    from lmlerp.report import figures

    figures.save(figures.connectivity_steps(pd.read_parquet(barriers)), steps)
    table = pd.concat(pd.read_parquet(path) for path in curves)
    figures.save(figures.connectivity_curves(table, pairs), curves_figure)


def summarize(
    *,
    inputs: Mapping[str, Any],
    summary_json: PathLike,
    pretrained: Sequence[str],
    families: Sequence[str],
    benchmarks: Mapping[str, str],
    constraints: Mapping[str, str],
    hub_models: Mapping[str, Mapping[str, Any]],
) -> None:
    """Collect the measured numbers of every stage into summary.json.

    `inputs`: pretrain_metrics (one per model of `pretrained`, none where nothing is pretrained
    here), selections, tables and trends (one each per family), judge_metrics where this config
    trains the TF-IDF judge, and connectivity, curves, connectivity_data where it has that part.
    A part the config leaves out has no entry at all: no "decorrelated" family (nor "reference"
    source) without paths.decorrelated, no "connectivity" block without connectivity.
    """
    from lmlerp.report import comparison

    judge = inputs.get("judge_metrics")
    tables = {f: pd.read_parquet(path) for f, path in zip(families, inputs["tables"], strict=True)}
    result = {
        "models": summary.models(inputs["pretrain_metrics"], inputs["selections"], pretrained),
        "judge": atomic.read_json(judge) if judge else {},
        "sources": summary.provenance(hub_models, decorrelated="decorrelated" in families),
        **summary.experiments(inputs["tables"], inputs["trends"], families),
        **_connectivity(inputs),
        "comparison": comparison.summary(comparison.matched(tables)),
        "timings_s": summary.stage_timings(benchmarks, constraints),
    }
    atomic.write_json(summary_json, result)


def _connectivity(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """summary.json's "connectivity" block, or nothing where the config has no such part."""
    if "connectivity" not in inputs:
        return {}
    return {
        "connectivity": summary.connectivity(
            inputs["connectivity"], inputs["curves"], inputs["connectivity_data"]
        )
    }
