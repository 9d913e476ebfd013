"""Figures drawn from small tables: Fig 11 (pretraining loss) from loss tables as `pretrain`
writes them."""

import matplotlib.figure
import numpy as np
import pandas as pd

from lmlerp.report import figures, tasks


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
