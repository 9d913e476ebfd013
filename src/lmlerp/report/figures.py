"""The paper's figures (Rofin et al. 2022, Figs 3–11), one function per figure, seaborn.

Every function takes tidy tables (one row per path point, explicit coordinates) and returns a
matplotlib Figure; `save` writes it atomically. Axes use the paper's symbols: α, α', β, θ.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

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


def _panels(table: pd.DataFrame, x: str, metrics: list[str], xlabel: str, title: str, hue=None):
    """One line plot per metric, side by side, sharing the x axis."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        sns.lineplot(data=table, x=x, y=metric, hue=hue, marker="o", ax=ax)
        ax.set(xlabel=xlabel, ylabel=METRIC_LABELS.get(metric, metric))
        if metric == "perplexity":
            ax.set_yscale("log")
        ax.axvspan(0, 1, color="0.9", zorder=0)  # the interpolation interval [0, 1]
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fig03_g1(g1: pd.DataFrame):
    """Fig 3: g1(α) = α·θ+ + (1−α)·θ− — sentiment, fluency and grammar along the line."""
    return _panels(
        g1, "alpha", ["positive_score", "perplexity", "grammar"], "α", "g1(α) = α·θ+ + (1−α)·θ−"
    )


def fig04_word_probabilities(g1: pd.DataFrame, words: dict[str, list[str]]):
    """Fig 4: P(word | "The movie was") along g1, positive words solid, negative dashed."""
    rows = [
        {"alpha": r.alpha, "word": w, "polarity": polarity, "probability": getattr(r, f"p_{w}")}
        for r in g1.itertuples()
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
    """Fig 5: g1 against α and g2 against α' (α' = 2α − 1 maps one onto the other)."""
    both = pd.concat(
        [
            g1.assign(path="g1(α)", coordinate=g1.alpha),
            g2.assign(path="g2(α')", coordinate=g2.alpha),
        ]
    )
    fig = _panels(
        both, "coordinate", ["positive_score", "perplexity"], "α (g1) or α' (g2)",
        "g1 vs g2 = θ0 + α'·(θ+ − θ−)", hue="path",
    )  # fmt: skip
    return fig


def fig06_dexperts_vs_weights(dexperts: pd.DataFrame, g2: pd.DataFrame):
    """Fig 6: output-space z0 + α(z+ − z−) (DExperts) vs weight-space θ0 + α(θ+ − θ−) (g2)."""
    both = pd.concat(
        [
            dexperts.assign(method="DExperts: z0 + α(z+ − z−)"),
            g2.assign(method="weights: θ0 + α(θ+ − θ−)"),
        ]
    )
    return _panels(
        both, "alpha", ["positive_score", "perplexity"], "α", "DExperts vs weight interpolation",
        hue="method",
    )  # fmt: skip


def _heatmaps(g3: pd.DataFrame, metrics: list[str], title: str):
    """Heatmaps of metrics over the (α, β) grid of g3, α on x, β on y (β increasing upwards)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        grid = g3.pivot_table(index="beta", columns="alpha", values=metric).sort_index(
            ascending=False
        )
        sns.heatmap(grid, annot=grid.shape[0] <= 8, fmt=".2f", cmap="viridis", ax=ax)
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
        decorrelated, "alpha", ["perplexity", "distinct_2", "grammar"], "α",
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
    "seeds_full": "seeds 42 ↔ 43, full fine-tuning",
    "seeds_lora": "seeds 42 ↔ 43, LoRA merged",
    "theta_pos_neg": "θ+ ↔ θ− (LM loss)",
}


def connectivity_steps(barriers: pd.DataFrame):
    """Each barrier of the seed pair's straight path against the fine-tuning step, one line per
    model; top row on the held-out loss, bottom row on the error (1 − accuracy)."""
    quantities = ["loss", "error"]
    metrics = list(CONNECTIVITY_LABELS)
    fig, axes = plt.subplots(len(quantities), len(metrics), figsize=(4 * len(metrics), 6.4))
    for row, quantity in zip(axes, quantities, strict=True):
        part = barriers[barriers.quantity == quantity]
        for ax, metric in zip(row, metrics, strict=True):
            sns.lineplot(data=part, x="step", y=metric, hue="model", marker="o", ax=ax)
            ax.set(xlabel="fine-tuning step", ylabel=f"{CONNECTIVITY_LABELS[metric]} ({quantity})")
    fig.suptitle("Linear mode connectivity of two seeds along fine-tuning")
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
