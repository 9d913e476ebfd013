"""Which path controls sentiment at the least fluency cost: every family at matched positive scores.

Rofin et al. measure the trade-off between attribute control and fluency along g1, g2 and
DExperts; the merge families (`paths.merges`) join them here. Each point is one model (or
DExperts ensemble) with a positive score (Eq. 6) and a judge-LM perplexity of its samples, both
with 95% bootstrap intervals over prompts (`evaluate.tables`, pooled rows).

Matched positive scores: the targets are the positive scores that g1 reaches at its points
(the paper's path sets the scale). A family's cost at target s is the lowest perplexity among
its points whose positive score is at least s — the family's best grid point for that much
control, its lower frontier. No interpolation between grid points (a 2-D family has no order),
so a coarse grid is judged by the points it has; a family that never reaches s has no entry.
The intervals are the chosen point's own: they do not account for choosing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

POOLED = "all"
EXCLUDED = ("decorrelated",)  # θ0 ↔ θC4 steers nothing: not a control path
REFERENCE = "g1"  # its points' positive scores are the targets
COLUMNS = ("positive_score", "perplexity")


def points(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every point of every compared family (pooled rows): family, point, scores, intervals."""
    keep = ["point", *(f"{m}{s}" for m in COLUMNS for s in ("", "_lo", "_hi"))]
    frames = [
        table.loc[table.kind == POOLED, keep].assign(family=family)
        for family, table in tables.items()
        if family not in EXCLUDED
    ]
    return pd.concat(frames, ignore_index=True)[["family", *keep]]


def targets(tables: Mapping[str, pd.DataFrame]) -> list[float]:
    """The matched positive scores: g1's, ascending, without repeats or NaN."""
    scores = points({REFERENCE: tables[REFERENCE]}).positive_score
    return sorted({float(s) for s in scores if not math.isnan(s)})


def matched(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per target positive score s and family: the point of least perplexity with score ≥ s.

    Columns: target, family, point, positive_score and perplexity with their intervals; one row
    per (target, family) that reaches s (a point with NaN perplexity cannot be chosen).
    """
    every = points(tables).dropna(subset=list(COLUMNS))
    rows = []
    for target in targets(tables):
        reached = every[every.positive_score >= target]
        best = reached.loc[reached.groupby("family", sort=False).perplexity.idxmin()]
        rows.append(best.assign(target=target))
    if not rows:
        return pd.DataFrame(columns=["target", *every.columns])
    out = pd.concat(rows, ignore_index=True)
    return out[["target", *every.columns]].sort_values(["target", "perplexity"], ignore_index=True)


def summary(table: pd.DataFrame) -> dict:
    """summary.json's block: per target, each family's chosen point and numbers (NaN → None)."""
    out = {}
    for target, group in table.groupby("target", sort=True):
        out[f"{target:.4g}"] = {
            row.family: {
                key: (None if isinstance(v, float) and math.isnan(v) else v)
                for key, v in row._asdict().items()
                if key not in ("Index", "family", "target")
            }
            for row in group.itertuples()
        }
    return out


def figure(tables: Mapping[str, pd.DataFrame]):
    """Positive score against perplexity, every point with both intervals, each family's lower
    frontier at the matched scores as a step line (log perplexity axis)."""
    import matplotlib.pyplot as plt

    every, frontier = points(tables), matched(tables)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for family, frame in every.groupby("family", sort=False):
        x, y = frame.positive_score, frame.perplexity
        errors = {
            "xerr": [x - frame.positive_score_lo, frame.positive_score_hi - x],
            "yerr": [y - frame.perplexity_lo, frame.perplexity_hi - y],
        }
        bars = ax.errorbar(x, y, fmt="o", alpha=0.75, capsize=2, label=family, **errors)
        best = frontier[frontier.family == family]
        if len(best):
            ax.step(best.target, best.perplexity, where="post", color=bars[0].get_color(), lw=1)
    ax.set(xlabel="positive score (Eq. 6)", ylabel="perplexity (judge LM)", yscale="log")
    ax.set_title("Sentiment control against fluency: points and frontiers at g1's scores")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig
