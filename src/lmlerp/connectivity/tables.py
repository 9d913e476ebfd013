"""Linear mode connectivity of seed pairs over fine-tuning time: curves, barriers, Δ, tables.

For every fine-tuning step s at which both seeds saved a checkpoint, the held-out loss and
accuracy are measured at N points of θ(t) = (1 − t)·θ1(s) + t·θ2(s) (`curves.seed_pair_lines`),
and the barriers of `metrics` are computed on the loss curve and on the error curve
(error = 1 − accuracy). Δmetric = metric(last checkpoint) − metric(first checkpoint), per model
(Thaman report, Tables 1–2: metric × model). Pure pandas: no torch import.
"""

from __future__ import annotations

import pandas as pd

from lmlerp.connectivity import metrics

QUANTITIES = {"loss": "loss", "error": "accuracy"}  # barrier quantity → curve column
SHORT = {
    "barrier_height": "BH",
    "convexity_gap": "CG",
    "improved_convexity_gap": "ICG",
    "rebasin_barrier": "rebasin",
}


def barriers(curve: pd.DataFrame) -> pd.DataFrame:
    """BH, CG, ICG and the re-basin barrier per step, of the loss and of the error curve.

    Returns columns step, quantity (loss | error), barrier_height, convexity_gap,
    improved_convexity_gap, rebasin_barrier.
    """
    rows = []
    for step, group in curve.sort_values(["step", "t"]).groupby("step"):
        for quantity, column in QUANTITIES.items():
            values = group[column] if quantity == "loss" else 1 - group[column]
            measured = metrics.curve_metrics(group.t.to_numpy(), values.to_numpy())
            rows.append({"step": int(step), "quantity": quantity, **measured})
    return pd.DataFrame(rows)


def deltas(table: pd.DataFrame) -> pd.DataFrame:
    """Δ = value at the last checkpoint − value at the first, per model and quantity.

    `table` is the concatenated `barriers` output with a `model` column. Returns columns model,
    quantity, first_step, last_step, then the four metrics (their Δ).
    """
    rows = []
    for (model, quantity), group in table.groupby(["model", "quantity"], sort=False):
        group = group.sort_values("step")
        start, end = group.iloc[0], group.iloc[-1]
        change = metrics.delta(
            {m: start[m] for m in metrics.METRICS}, {m: end[m] for m in metrics.METRICS}
        )
        rows.append(
            {
                "model": model,
                "quantity": quantity,
                "first_step": int(start.step),
                "last_step": int(end.step),
                **change,
            }
        )
    return pd.DataFrame(rows)


def report_table(table: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Metric × model, as the report's Tables 1–2: BH, CG, ICG, rebasin at the end of
    fine-tuning, then ΔBH, ΔCG, ΔICG, Δrebasin (end − start). Columns in the models' order."""
    models = list(dict.fromkeys(table.model))
    part = table[table.quantity == quantity]
    last = part.sort_values("step").groupby("model").tail(1).set_index("model")
    change = deltas(part).set_index("model")
    rows = {SHORT[m]: [last.loc[name, m] for name in models] for m in metrics.METRICS}
    rows |= {f"Δ{SHORT[m]}": [change.loc[name, m] for name in models] for m in metrics.METRICS}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=models)
    out.index.name = "metric"
    return out.reset_index()


def summary(table: pd.DataFrame, curve_table: pd.DataFrame) -> dict:
    """The "connectivity" block of summary.json.

    pairs: per model, per checkpoint step, the barriers of the loss and error curves; delta: per
    model and quantity; curves: per pair, the mean loss along the line and the trained curve and
    the highest loss on each.
    """
    pairs: dict = {}
    for row in table.itertuples():
        entry = pairs.setdefault(row.model, {}).setdefault(str(row.step), {})
        entry[row.quantity] = {SHORT[m]: float(getattr(row, m)) for m in metrics.METRICS}
    delta: dict = {}
    for row in deltas(table).itertuples():
        delta.setdefault(row.model, {})[row.quantity] = {
            SHORT[m]: float(getattr(row, m)) for m in metrics.METRICS
        }
    bends = {}
    for (pair, path), group in curve_table.groupby(["pair", "path"]):
        bends.setdefault(pair, {})[path] = {
            "mean_loss": float(group.loss.mean()),
            "max_loss": float(group.loss.max()),
            "barrier_height": metrics.barrier_height(group.t, group.loss),
        }
    return {"pairs": pairs, "delta": delta, "curves": bends}
