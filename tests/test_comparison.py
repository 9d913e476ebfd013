"""The comparison of every family at matched positive scores (report/comparison.py)."""

from __future__ import annotations

import pandas as pd

from lmlerp.report import comparison


def table(points: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """A pooled family table: point → (positive score, perplexity), intervals ±10%."""
    rows = [
        {"point": p, "kind": kind, "positive_score": s, "positive_score_lo": 0.9 * s,
         "positive_score_hi": 1.1 * s, "perplexity": q, "perplexity_lo": 0.9 * q,
         "perplexity_hi": 1.1 * q}
        for p, (s, q) in points.items()
        for kind in ("neutral", "all")
    ]  # fmt: skip
    return pd.DataFrame(rows)


TABLES = {
    "g1": table({"a0": (0.3, 10.0), "a0.5": (0.5, 20.0), "a1": (0.7, 40.0)}),
    "ties": table({"d0.2": (0.6, 15.0), "d0.5": (0.8, 100.0), "d1": (0.2, 5.0)}),
    "decorrelated": table({"a0.5": (0.9, 1.0)}),  # steers nothing: left out
}


def test_each_family_gets_its_least_perplexity_point_at_or_above_each_target():
    out = comparison.matched(TABLES)
    assert comparison.targets(TABLES) == [0.3, 0.5, 0.7]
    chosen = {(r.target, r.family): (r.point, r.perplexity) for r in out.itertuples()}
    assert chosen == {
        (0.3, "g1"): ("a0", 10.0), (0.3, "ties"): ("d0.2", 15.0),
        (0.5, "g1"): ("a0.5", 20.0), (0.5, "ties"): ("d0.2", 15.0),
        (0.7, "g1"): ("a1", 40.0), (0.7, "ties"): ("d0.5", 100.0),
    }  # fmt: skip
    assert set(out.family) == {"g1", "ties"} and "perplexity_hi" in out


def test_summary_block_and_figure():
    block = comparison.summary(comparison.matched(TABLES))
    assert block["0.5"]["ties"]["point"] == "d0.2" and block["0.5"]["g1"]["perplexity"] == 20.0
    fig = comparison.figure(TABLES)
    assert len(fig.axes[0].get_legend().get_texts()) == 2
