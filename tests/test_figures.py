"""The paper's figures from small tables: kinds, bands, Fig 5's α scales, Fig 7's scale, and
Fig 11 (pretraining loss) from loss tables as `pretrain` writes them."""

from __future__ import annotations

import itertools

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import LogNorm

from lmlerp.report import figures, tasks

METRICS = ("positive_score", "perplexity", "grammar", "distinct_2", "nll_pos", "nll_neg")
KINDS = ("all", "neutral", "positive", "negative", "fixed")


def family_table(alphas, betas=(np.nan,), scale=1.0) -> pd.DataFrame:
    """A family table as `lmlerp.evaluate.tables` writes it: a row per point and kind."""
    rows = []
    for (alpha, beta), kind in itertools.product(itertools.product(alphas, betas), KINDS):
        row = {"alpha": alpha, "beta": beta, "kind": kind, "point": f"a{alpha}b{beta}"}
        for k, metric in enumerate(METRICS):
            value = scale * (1 + k + alpha + KINDS.index(kind))
            row |= {metric: value, f"{metric}_lo": value - 0.5, f"{metric}_hi": value + 0.5}
        rows.append(row | {"p_good": 0.1, "p_bad": 0.2})
    return pd.DataFrame(rows)


def test_fig03_draws_pooled_and_each_kind_with_a_band_per_line():
    fig = figures.fig03_g1(family_table([0.0, 0.5, 1.0]))
    ax = fig.axes[0]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == [
        "all prompts", "neutral", "positive", "negative",
    ]  # fmt: skip
    assert len(ax.lines) == 4 and len(ax.collections) == 4  # a band per line
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(1 + 0.0 - 0.5)  # the pooled positive score's lower bound


def test_fig05_uses_neutral_prompts_and_maps_alpha_prime_onto_alpha():
    g1 = family_table([0.0, 0.5, 1.0])
    g2 = family_table([-1.0, 0.0, 1.0])
    fig = figures.fig05_g1_vs_g2(g1, g2)
    ax = fig.axes[0]
    g1_line, g2_line = ax.lines
    neutral = KINDS.index("neutral")
    np.testing.assert_allclose(g1_line.get_ydata(), [1 + a + neutral for a in (0, 0.5, 1)])
    # g2 at α' = −1, 0, 1 sits at α = (α' + 1)/2 = 0, 0.5, 1
    np.testing.assert_allclose(g2_line.get_xdata(), [0.0, 0.5, 1.0])
    top = [c for c in ax.child_axes if "α'" in c.get_xlabel()]
    assert top, "the α' axis is drawn"


def test_fig06_has_one_row_per_prompt_kind():
    fig = figures.fig06_dexperts_vs_weights(family_table([-1.0, 0.0, 1.0]), family_table([0.0]))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles.count("neutral prompts") == 2 and titles.count("negative prompts") == 2
    assert len(fig.axes) == 6


def test_fig07_perplexity_on_a_log_scale_with_three_significant_digits():
    g3 = family_table([0.0, 1.0], [0.0, 1.0], scale=1.4e7)
    fig = figures.fig07_g3(g3)
    mesh = fig.axes[1].collections[0]
    assert isinstance(mesh.norm, LogNorm)
    annotations = [t.get_text() for t in fig.axes[1].texts]
    assert annotations and all(len(t.replace(".", "").split("e")[0]) <= 3 for t in annotations)
    assert "1.4e+07" in [t.get_text() for t in fig.axes[0].texts]  # pooled α = 0: 1.4e7 × 1


def test_three_digits_formats_large_and_small_values():
    grid = pd.DataFrame([[14023456.78, 0.123456], [6.0, 987.654]])
    assert figures._three_digits(grid).to_numpy().tolist() == [["1.4e+07", "0.123"], ["6", "988"]]


def loss_table(start: float, steps: int = 20) -> pd.DataFrame:
    step = np.arange(steps)
    return pd.DataFrame({"step": step, "lr": 1e-3, "loss": start * np.exp(-step / 10) + 2.0})


def test_fig11_draws_one_loss_curve_per_model():
    losses = pd.concat(
        [loss_table(7.0).assign(model="theta0"), loss_table(8.0).assign(model="theta_c4")]
    )
    fig = figures.fig11_pretraining(losses)
    assert isinstance(fig, matplotlib.figure.Figure)
    (ax,) = fig.axes
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) == 20]
    assert len(curves) == 2
    assert sorted(float(line.get_ydata()[0]) for line in curves) == [9.0, 10.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "θ0",
        figures.MODEL_LABELS["theta_c4"],
    ]
    assert ax.get_xlabel() == "step"
    figures.plt.close(fig)


def test_plot_pretraining_writes_a_png_from_the_loss_tables(tmp_path):
    paths = []
    for name, start in (("theta_c4", 8.0),):  # paper scale: GPT-C4 only
        paths.append(tmp_path / f"{name}.parquet")
        loss_table(start).to_parquet(paths[-1])
    out = tmp_path / "figures" / "fig11_pretraining.png"
    out.parent.mkdir()
    tasks.plot_pretraining(losses=paths, models=["theta_c4"], figure=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_plot_without_the_decorrelated_pair_draws_every_other_figure(tmp_path):
    """No θC4: no norms, no decorrelated table, and no Fig 9 or 10 asked for or drawn."""
    inputs = {}
    for family in ("g1", "g2", "g3", "dexperts"):
        inputs[family] = tmp_path / f"{family}.parquet"
        family_table([-1.0, 0.0, 1.0], [0.0, 1.0] if family == "g3" else (np.nan,)).to_parquet(
            inputs[family]
        )
    names = ("fig03", "fig04", "fig05", "fig06", "fig07", "fig08", "fig12")
    out = {name: tmp_path / f"{name}.png" for name in names} | {"comparison": tmp_path / "c.tsv"}
    tasks.plot(inputs=inputs, figures_out=out, words={"positive": ["good"], "negative": ["bad"]})
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"{name}.png" for name in names]
    assert (tmp_path / "c.tsv").stat().st_size > 0
