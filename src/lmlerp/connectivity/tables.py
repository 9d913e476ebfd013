"""Linear mode connectivity of seed pairs over fine-tuning time: curves, barriers, Δ, tables.

For every fine-tuning step s at which all seeds saved a checkpoint (step 0, the fine-tuning
start, included) and every pair of seeds, the held-out metrics are measured at N points of
θ(t) = (1 − t)·θ1(s) + t·θ2(s) (`curves.seed_pair_lines`), and the barriers of `metrics` are
computed on the loss curve, the error curve (error = 1 − accuracy) and, where F1 is measured
(QQP), the F1 error curve (1 − F1). With s_0 = 0 and s_end the last step, per model and pair:

    Δmetric  = metric(s_end) − metric(s_0)        (signed: > 0 when fine-tuning raised it)
    |Δmetric| = |metric(s_end) − metric(s_0)|      (the report's Δ, Tables 1–2)

Tables and summary.json give every value as its mean, min and max over the seed pairs
(n seeds, n(n − 1)/2 pairs); |Δ| is averaged per pair, mean_p |Δ_p|, not |mean_p Δ_p|.
Pure pandas: no torch import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from lmlerp.connectivity import metrics

# barrier quantity → (curve column, whether the quantity is 1 − that column)
QUANTITIES = {"loss": ("loss", False), "error": ("accuracy", True), "f1_error": ("f1", True)}
SHORT = {
    "barrier_height": "BH",
    "convexity_gap": "CG",
    "improved_convexity_gap": "ICG",
    "rebasin_barrier": "rebasin",
}
ENDPOINTS = "endpoint_mean"  # the quantity's mean at t = 0 and t = 1: the two seeds' own models
LABELS = {ENDPOINTS: "endpoints", **SHORT}
STATISTICS = ("mean", "min", "max")


def barriers(curve: pd.DataFrame) -> pd.DataFrame:
    """BH, CG, ICG and the re-basin barrier per pair and step, of every measured quantity.

    `curve` is `curves.seed_pair_lines` output. Returns columns pair, step, quantity (loss |
    error | f1_error), endpoint_mean, barrier_height, convexity_gap, improved_convexity_gap,
    rebasin_barrier.
    """
    measured = {q: spec for q, spec in QUANTITIES.items() if spec[0] in curve.columns}
    rows = []
    for (pair, step), group in curve.sort_values(["pair", "step", "t"]).groupby(["pair", "step"]):
        for quantity, (column, complement) in measured.items():
            values = (1 - group[column] if complement else group[column]).to_numpy()
            rows.append(
                {
                    "pair": pair,
                    "step": int(step),
                    "quantity": quantity,
                    ENDPOINTS: float((values[0] + values[-1]) / 2),
                    **metrics.curve_metrics(group.t.to_numpy(), values),
                }
            )
    return pd.DataFrame(rows)


def deltas(table: pd.DataFrame) -> pd.DataFrame:
    """Δ and |Δ| between the first checkpoint (step 0) and the last, per model, pair, quantity
    and metric.

    `table` is the concatenated `barriers` output with a `model` column. Returns columns model,
    pair, quantity, metric, first_step, last_step, start, end, delta (end − start) and
    abs_delta (|end − start|).
    """
    rows = []
    for (model, pair, quantity), group in table.groupby(["model", "pair", "quantity"], sort=False):
        group = group.sort_values("step")
        start, end = group.iloc[0], group.iloc[-1]
        first = {m: start[m] for m in metrics.METRICS}
        last = {m: end[m] for m in metrics.METRICS}
        signed, absolute = metrics.delta(first, last), metrics.abs_delta(first, last)
        for name in metrics.METRICS:
            rows.append(
                {
                    "model": model,
                    "pair": pair,
                    "quantity": quantity,
                    "metric": name,
                    "first_step": int(start.step),
                    "last_step": int(end.step),
                    "start": float(first[name]),
                    "end": float(last[name]),
                    "delta": signed[name],
                    "abs_delta": absolute[name],
                }
            )
    return pd.DataFrame(rows)


def spread(values: Iterable[float]) -> dict[str, float]:
    """Mean, min and max of one number over the seed pairs."""
    series = pd.Series(list(values), dtype=float)
    return {"mean": float(series.mean()), "min": float(series.min()), "max": float(series.max())}


def report_rows(table: pd.DataFrame, quantity: str) -> dict[str, dict[str, dict[str, float]]]:
    """{row label: {model: spread over pairs}} of one quantity, in the report's row order.

    Rows: the endpoints' value and the four barriers at the end of fine-tuning; the same at
    step 0 (the non-fine-tuned baseline: θ0 with each seed's fresh head); |Δ| of the four
    barriers (the report's Δ); the signed Δ.
    """
    part = table[table.quantity == quantity]
    first, last = part.step.min(), part.step.max()
    models = list(dict.fromkeys(table.model))
    change = deltas(part)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for at, suffix in ((last, ""), (first, f" (step {first})")):
        at_step = part[part.step == at]
        for name, label in LABELS.items():
            rows[label + suffix] = {m: spread(at_step[at_step.model == m][name]) for m in models}
    for column, prefix in (("abs_delta", "|Δ{}|"), ("delta", "Δ{}")):
        for name in metrics.METRICS:
            own = change[change.metric == name]
            rows[prefix.format(SHORT[name])] = {
                m: spread(own[own.model == m][column]) for m in models
            }
    return rows


def report_table(table: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Metric × model, as the report's Tables 1–2 (`report_rows`): per model a column with the
    mean over the seed pairs, then `<model> min` and `<model> max`."""
    rows = report_rows(table, quantity)
    models = list(dict.fromkeys(table.model))
    columns = [f"{m} {s}" if s != "mean" else m for m in models for s in STATISTICS]
    out = pd.DataFrame(
        [[cells[m][s] for m in models for s in STATISTICS] for cells in rows.values()],
        index=pd.Index(list(rows), name="metric"),
        columns=columns,
    )
    return out.reset_index()


def summary(table: pd.DataFrame, curve_table: pd.DataFrame, data: Mapping[str, object]) -> dict:
    """The "connectivity" block of summary.json.

    seed_pairs: the pairs measured; pairs: per model, per checkpoint step, per quantity, each
    barrier (and the endpoints' value) as mean / min / max over pairs and by pair; delta: per
    model and quantity, Δ and |Δ| of each barrier as mean / min / max over pairs; data: per model,
    the task's examples per split and the lines dropped reading it; curves: per curve pair, the
    mean loss along the line and the trained curve and the highest loss on each.
    """
    pairs: dict = {}
    for (model, step, quantity), group in table.groupby(["model", "step", "quantity"], sort=False):
        entry = pairs.setdefault(model, {}).setdefault(str(step), {})
        by_pair = group.set_index("pair")
        entry[quantity] = {
            label: {**spread(group[name]), "by_pair": by_pair[name].astype(float).to_dict()}
            for name, label in LABELS.items()
        }
    delta: dict = {}
    for (model, quantity, name), group in deltas(table).groupby(
        ["model", "quantity", "metric"], sort=False
    ):
        delta.setdefault(model, {}).setdefault(quantity, {})[SHORT[name]] = {
            "delta": spread(group.delta),
            "abs_delta": spread(group.abs_delta),
        }
    bends = {}
    for (pair, path), group in curve_table.groupby(["pair", "path"]):
        bends.setdefault(pair, {})[path] = {
            "mean_loss": float(group.loss.mean()),
            "max_loss": float(group.loss.max()),
            "barrier_height": metrics.barrier_height(group.t, group.loss),
        }
    return {
        "seed_pairs": sorted(set(table.pair)),
        "pairs": pairs,
        "delta": delta,
        "data": dict(data),
        "curves": bends,
    }
