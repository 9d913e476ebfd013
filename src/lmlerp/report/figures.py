"""The paper's figures (Rofin et al. 2022, Figs 3–11), one function per figure, seaborn.

Every function takes tidy family tables (one row per path point and prompt kind, explicit
coordinates, 95% bootstrap intervals in metric_lo / metric_hi; `lmlerp.evaluate.tables`) and
returns a matplotlib Figure, intervals drawn as bands; `save` writes it atomically. Axes use
the paper's symbols: α, α', β, θ.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm

from lmlerp.io.atomic import atomic_path

sns.set_theme(style="whitegrid", context="notebook")
METRIC_LABELS = {
    "positive_score": "positive score (Eq. 6)",
    "perplexity": "perplexity (judge LM)",
    "grammar": "grammatical share",
    "distinct_1": "distinct-1",
    "distinct_2": "distinct-2",
    "distinct_3": "distinct-3",
    "nll_pos": "NLL, positive test",
    "nll_neg": "NLL, negative test",
}


POOLED = "all"  # the kind of the rows pooled over every prompt kind
KINDS = ("neutral", "positive", "negative")  # the paper's prompt sets (the fixed one is Fig 4's)


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a family table pooled over prompt kinds (one per point)."""
    return table[table.kind == POOLED]


def _line(ax, frame: pd.DataFrame, x: str, metric: str, label: str | None = None) -> None:
    """One metric against x, its bootstrap interval (columns metric_lo, metric_hi) as a band."""
    frame = frame.sort_values(x)
    (line,) = ax.plot(frame[x], frame[metric], marker="o", label=label)
    if f"{metric}_lo" in frame:
        ax.fill_between(
            frame[x], frame[f"{metric}_lo"], frame[f"{metric}_hi"], color=line.get_color(),
            alpha=0.2, linewidth=0,
        )  # fmt: skip


def _style(ax, metric: str, xlabel: str) -> None:
    ax.set(xlabel=xlabel, ylabel=METRIC_LABELS.get(metric, metric))
    if metric == "perplexity":
        ax.set_yscale("log")
    ax.axvspan(0, 1, color="0.9", zorder=0)  # the interpolation interval [0, 1]


def _panels(
    groups: dict[str, pd.DataFrame], x: str, metrics: list[str], xlabel: str, title: str,
    rows: dict[str, dict[str, pd.DataFrame]] | None = None,
):  # fmt: skip
    """One line plot per metric (columns) and per row of `rows` (default: one row, `groups`);
    every group of a panel is a line with its 95% interval as a band."""
    rows = rows or {"": groups}
    fig, axes = plt.subplots(
        len(rows), len(metrics), figsize=(4.2 * len(metrics), 3.4 * len(rows) + 0.4),
        squeeze=False, sharex=True,
    )  # fmt: skip
    for ax_row, (row_name, row_groups) in zip(axes, rows.items(), strict=True):
        for ax, metric in zip(ax_row, metrics, strict=True):
            for label, frame in row_groups.items():
                _line(ax, frame, x, metric, label if len(row_groups) > 1 else None)
            _style(ax, metric, xlabel)
            if row_name:
                ax.set_title(f"{row_name} prompts", fontsize="medium")
    if any(len(g) > 1 for g in rows.values()):
        axes[0, -1].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def by_kind(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The pooled rows, then each prompt kind present, as line groups."""
    kinds = [POOLED, *(k for k in KINDS if (table.kind == k).any())]
    return {("all prompts" if k == POOLED else k): table[table.kind == k] for k in kinds}


def fig03_g1(g1: pd.DataFrame):
    """Fig 3: g1(α) = α·θ+ + (1−α)·θ− — sentiment, fluency and grammar along the line, per
    prompt kind and pooled."""
    return _panels(
        by_kind(g1), "alpha", ["positive_score", "perplexity", "grammar"], "α",
        "g1(α) = α·θ+ + (1−α)·θ−",
    )  # fmt: skip


def fig04_word_probabilities(g1: pd.DataFrame, words: dict[str, list[str]]):
    """Fig 4: P(word | "The movie was") along g1, positive words solid, negative dashed."""
    rows = [
        {"alpha": r.alpha, "word": w, "polarity": polarity, "probability": getattr(r, f"p_{w}")}
        for r in pooled(g1).itertuples()
        for polarity, ws in words.items()
        for w in ws
    ]
    long = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=long, x="alpha", y="probability", hue="word", style="polarity", ax=ax)
    ax.set(xlabel="α", ylabel='P(word | "The movie was")', yscale="log")
    ax.set_title("Next-token probabilities along g1")
    fig.tight_layout()
    return fig


def fig05_g1_vs_g2(g1: pd.DataFrame, g2: pd.DataFrame):
    """Fig 5: g1 against α and g2 against α' on neutral prompts, as in the paper.

    g2(α') = θ0 + α'·(θ+ − θ−) and g1(α) differ by the base: their directions coincide under
    α' = 2α − 1 (Rofin et al. 2022, Section 5.2). g2's points are drawn at α = (α' + 1)/2, so both
    share the bottom α axis; the top axis reads α'.
    """
    neutral = {
        "g1(α)": g1[g1.kind == "neutral"],
        "g2(α')": g2[g2.kind == "neutral"].assign(alpha=lambda t: (t.alpha + 1) / 2),
    }
    fig = _panels(
        neutral, "alpha", ["positive_score", "perplexity"], "α (g1)",
        "g1 vs g2 = θ0 + α'·(θ+ − θ−), neutral prompts",
    )  # fmt: skip
    for ax in fig.axes[:2]:
        top = ax.secondary_xaxis("top", functions=(lambda a: 2 * a - 1, lambda a: (a + 1) / 2))
        top.set_xlabel("α' = 2α − 1 (g2)")
    fig.tight_layout()
    return fig


def fig06_dexperts_vs_weights(dexperts: pd.DataFrame, g2: pd.DataFrame):
    """Fig 6: output-space z0 + α(z+ − z−) (DExperts) vs weight-space θ0 + α(θ+ − θ−) (g2), one
    row per prompt kind."""
    methods = {"DExperts: z0 + α(z+ − z−)": dexperts, "weights: θ0 + α(θ+ − θ−)": g2}
    kinds = [k for k in KINDS if (g2.kind == k).any()]
    rows = {k: {m: t[t.kind == k] for m, t in methods.items()} for k in kinds}
    return _panels(
        {}, "alpha", ["positive_score", "perplexity"], "α", "DExperts vs weight interpolation",
        rows=rows,
    )  # fmt: skip


def _three_digits(grid: pd.DataFrame) -> pd.DataFrame:
    """Heatmap annotations with 3 significant digits (1.4e+07, not 14023456.78)."""
    return grid.map(lambda v: f"{v:.3g}")


def _heatmaps(g3: pd.DataFrame, metrics: list[str], title: str):
    """Heatmaps of metrics over the (α, β) grid of g3, α on x, β on y (β increasing upwards);
    perplexity on a log colour scale (one diverged cell would swamp a linear one)."""
    g3 = pooled(g3)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        grid = g3.pivot_table(index="beta", columns="alpha", values=metric).sort_index(
            ascending=False
        )
        log = metric == "perplexity" and (grid.to_numpy() > 0).all()
        sns.heatmap(
            grid, annot=_three_digits(grid) if grid.shape[0] <= 8 else False, fmt="",
            cmap="viridis", norm=LogNorm() if log else None, ax=ax,
        )  # fmt: skip
        ax.set(xlabel="α (towards θ+)", ylabel="β (towards θ−)", title=METRIC_LABELS[metric])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fig07_g3(g3: pd.DataFrame):
    """Fig 7: g3(α, β) = θ0 + α(θ+ − θ0) + β(θ− − θ0): positive score and perplexity."""
    return _heatmaps(
        g3, ["positive_score", "perplexity"], "g3(α, β) = θ0 + α(θ+ − θ0) + β(θ− − θ0)"
    )


def fig08_g3_nll(g3: pd.DataFrame):
    """Fig 8: test NLL on positive and negative sentences over the g3 plane."""
    return _heatmaps(g3, ["nll_pos", "nll_neg"], "g3: NLL of held-out movie sentences")


def fig09_weight_norms(norms: pd.DataFrame):
    """Fig 9: ‖w1 − w2‖/√numel per layer × tensor on one colour scale, for the paper's pairs of
    one model size: (a) a model vs itself fine-tuned on positive text, (b) vs θC4."""
    pairs = list(dict.fromkeys(norms.pair))
    vmax = norms.value.max()
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 5), squeeze=False)
    for ax, pair in zip(axes[0], pairs, strict=True):
        grid = norms[norms.pair == pair].pivot_table(index="kind", columns="layer", values="value")
        sns.heatmap(grid, vmin=0, vmax=vmax, cmap="magma", ax=ax)
        ax.set(xlabel="layer (−1: embeddings, final norm)", ylabel="tensor", title=pair)
    fig.suptitle("‖w1 − w2‖ / √numel")
    fig.tight_layout()
    return fig


def fig10_decorrelated(decorrelated: pd.DataFrame):
    """Fig 10: α·θC4 + (1−α)·θ0 between independently pretrained LMs — the model breaks."""
    return _panels(
        {"": pooled(decorrelated)}, "alpha", ["perplexity", "distinct_2", "grammar"], "α",
        "decorrelated: α·θC4 + (1−α)·θ0",
    )  # fmt: skip


MODEL_LABELS = {"theta0": "θ0", "theta_c4": "θC4 (GPT-C4 at paper scale)"}


def fig11_pretraining(losses: pd.DataFrame):
    """Fig 11: training loss (next-token cross-entropy, nats) of the models pretrained here
    against the optimizer step; `losses` has columns model, step, loss."""
    table = losses.assign(model=losses.model.map(lambda m: MODEL_LABELS.get(m, m)))
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    sns.lineplot(data=table, x="step", y="loss", hue="model", ax=ax)
    ax.set(xlabel="step", ylabel="training loss (nats per token)", title="Pretraining")
    fig.tight_layout()
    return fig


CONNECTIVITY_LABELS = {
    "barrier_height": "BH",
    "convexity_gap": "CG",
    "improved_convexity_gap": "ICG",
    "rebasin_barrier": "re-basin barrier",
}
PAIR_LABELS = {
    "seeds_full": "first two seeds, full fine-tuning",
    "seeds_lora": "first two seeds, LoRA merged",
    "theta_pos_neg": "θ+ ↔ θ− (LM loss)",
}


def _pair_range(values: pd.Series) -> tuple[float, float]:
    """The band of a barrier over the seed pairs: from its min to its max."""
    return float(values.min()), float(values.max())


def connectivity_steps(barriers: pd.DataFrame):
    """Each barrier of the seeds' straight paths against the fine-tuning step, one line per
    model: the mean over the seed pairs, a band from their min to their max. One row per
    quantity: held-out loss, error (1 − accuracy), and F1 error (1 − F1) where measured."""
    quantities = [q for q in ("loss", "error", "f1_error") if q in set(barriers.quantity)]
    metrics = list(CONNECTIVITY_LABELS)
    fig, axes = plt.subplots(
        len(quantities), len(metrics), figsize=(4 * len(metrics), 3.2 * len(quantities)),
        squeeze=False,
    )  # fmt: skip
    for row, quantity in zip(axes, quantities, strict=True):
        part = barriers[barriers.quantity == quantity]
        for ax, metric in zip(row, metrics, strict=True):
            sns.lineplot(
                data=part, x="step", y=metric, hue="model", marker="o", errorbar=_pair_range,
                ax=ax,
            )  # fmt: skip
            ax.set(xlabel="fine-tuning step", ylabel=f"{CONNECTIVITY_LABELS[metric]} ({quantity})")
    pairs = barriers.pair.nunique()
    fig.suptitle(f"Linear mode connectivity along fine-tuning: mean and range over {pairs} pairs")
    fig.tight_layout()
    return fig


def connectivity_curves(curves: pd.DataFrame, pairs: list[str]):
    """Held-out loss along the trained Bezier curve and along the straight line, per pair."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 3.8), squeeze=False)
    for ax, pair in zip(axes[0], pairs, strict=True):
        sns.lineplot(
            data=curves[curves.pair == pair], x="t", y="loss", hue="path", marker="o", ax=ax
        )
        ax.set(xlabel="t", ylabel="held-out loss", title=PAIR_LABELS.get(pair, pair))
    fig.suptitle("Bezier curve (trained φ) vs straight line")
    fig.tight_layout()
    return fig


def save(fig, path: str | os.PathLike) -> None:
    """Write a figure as PNG (150 dpi), atomically, and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
