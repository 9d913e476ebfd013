"""Linear-mode-connectivity barriers on hand-built loss curves, and their defining invariants;
Δ and |Δ|, F1, seed pairs and their spread, and the counted drops of GLUE lines."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlerp.connectivity import classifier, examples
from lmlerp.connectivity import metrics as lmc_metrics
from lmlerp.connectivity import tables as lmc_tables
from lmlerp.connectivity.metrics import (
    abs_delta,
    barrier_height,
    chord_excess,
    convexity_gap,
    curve_metrics,
    delta,
    improved_convexity_gap,
    rebasin_barrier,
)

# --- hand-built curves --------------------------------------------------------------------------


def test_straight_line_between_unequal_endpoints_has_no_chord_barrier():
    t = np.linspace(0, 1, 7)
    loss = 2 + 3 * t
    assert barrier_height(t, loss) == pytest.approx(0, abs=1e-12)
    assert convexity_gap(t, loss) == pytest.approx(0, abs=1e-12)
    assert improved_convexity_gap(t, loss) == pytest.approx(0, abs=1e-12)
    assert rebasin_barrier(t, loss) == 1.5  # max 5 - mean(2, 5) = |5 - 2| / 2, never 0


def test_one_bump_has_barrier_one_at_the_middle():
    t = np.linspace(0, 1, 11)
    loss = 1 + 4 * t * (1 - t)
    excess = chord_excess(t, loss)
    assert barrier_height(t, loss) == pytest.approx(1, abs=1e-12)
    assert t[np.argmax(excess)] == 0.5
    assert excess[0] == excess[-1] == 0
    assert convexity_gap(t, loss) == barrier_height(t, loss)  # concave: the full chord is the worst


def test_two_bumps_around_a_deep_dip_give_a_convexity_gap_above_the_barrier():
    # t = 0, 1/4, 1/2, 3/4, 1 and L = 0, 1, -1, 1, 0.
    # BH: the chord from L(0) = 0 to L(1) = 0 is flat at 0, so BH = max L - 0 = 1 (at t = 1/4, 3/4).
    # CG: on [0, 1/2] the chord runs from 0 down to -1 and is -1/2 at t = 1/4, where L = 1:
    #     1 - (-1/2) = 3/2; [1/2, 1] gives 3/2 at t = 3/4 by symmetry. No pair does better (the
    #     lower convex envelope is the V through (0, 0), (1/2, -1), (1, 0)), so CG = 3/2.
    # rebasin: max L - (0 + 0)/2 = 1.
    t = [0, 0.25, 0.5, 0.75, 1]
    loss = [0, 1, -1, 1, 0]
    assert curve_metrics(t, loss) == {
        "barrier_height": 1.0,
        "convexity_gap": 1.5,
        "improved_convexity_gap": 1.5,
        "rebasin_barrier": 1.0,
    }


def test_sinusoid_with_two_bumps_has_convexity_gap_above_barrier():
    t = np.linspace(0, 1, 31)
    loss = np.sin(3 * np.pi * t)  # bumps at 1/6 and 5/6, a dip to -1 at 1/2
    assert barrier_height(t, loss) == pytest.approx(1, abs=1e-12)
    assert convexity_gap(t, loss) > barrier_height(t, loss) + 0.3


def test_unequal_endpoints_barrier_is_measured_against_the_chord_not_the_mean():
    # chord at t = 1/4: 3/4·0 + 1/4·2 = 1/2, so BH = 3 - 1/2 = 5/2; the mean would give 3 - 1 = 2.
    t, loss = [0, 0.25, 1], [0, 3, 2]
    assert barrier_height(t, loss) == 2.5
    assert rebasin_barrier(t, loss) == 2.0


def test_bump_on_a_slope_keeps_its_barrier():
    t = np.linspace(0, 1, 11)
    loss = 1 + 2 * t + 4 * t * (1 - t)  # the bump of the one-bump test on top of a slope
    assert barrier_height(t, loss) == pytest.approx(1, abs=1e-12)
    assert rebasin_barrier(t, loss) == pytest.approx(3.24 - 2, abs=1e-12)  # grid max at t = 0.7


def test_convex_curve_has_no_convexity_gap():
    t = np.linspace(0, 1, 21)
    loss = (t - 0.3) ** 2
    assert barrier_height(t, loss) == pytest.approx(0, abs=1e-12)
    assert convexity_gap(t, loss) == pytest.approx(0, abs=1e-12)
    assert improved_convexity_gap(t, loss) == pytest.approx(0, abs=1e-12)


def test_finer_grids_converge_to_the_analytic_barrier():
    # L(t) = 1 + sin(πt²): L(0) = L(1) = 1, so the chord is flat and the analytic BH is 1, reached
    # at t* = 1/√2, which no uniform grid contains. With |L''| ≤ M = 4π² + 2π on [0, 1] and
    # L'(t*) = 0, the nearest grid point (within h/2) is at most M/2·(h/2)² below the peak.
    sizes = [2, 3, 10, 51, 201]
    errors = []
    for n in sizes:
        t = np.linspace(0, 1, n)
        bh = barrier_height(t, 1 + np.sin(np.pi * t**2))
        h = 1 / (n - 1)
        assert bh <= 1 + 1e-12
        assert 1 - bh <= (4 * np.pi**2 + 2 * np.pi) * h**2 / 8 + 1e-12
        errors.append(1 - bh)
    assert errors == sorted(errors, reverse=True)
    assert errors[0] == pytest.approx(1, abs=1e-12)  # two points see nothing but the endpoints
    assert errors[-1] < 1e-4


def test_two_points_have_no_barrier_and_half_the_gap_as_rebasin():
    assert curve_metrics([0, 1], [3, 7]) == {
        "barrier_height": 0.0,
        "convexity_gap": 0.0,
        "improved_convexity_gap": 0.0,
        "rebasin_barrier": 2.0,
    }


def test_curve_metrics_keys_are_the_metric_names():
    assert tuple(curve_metrics([0, 0.5, 1], [1, 2, 1])) == lmc_metrics.METRICS


# --- Δmetric ------------------------------------------------------------------------------------


def test_delta_is_end_minus_start_per_metric():
    start = {"barrier_height": 0.5, "convexity_gap": 0.75}
    end = {"convexity_gap": 0.25, "barrier_height": 2.0}
    assert delta(start, end) == {"barrier_height": 1.5, "convexity_gap": -0.5}


def test_abs_delta_is_the_magnitude_of_the_signed_delta():
    start = {"barrier_height": 0.5, "convexity_gap": 0.75}
    end = {"barrier_height": 2.0, "convexity_gap": 0.25}
    assert abs_delta(start, end) == {"barrier_height": 1.5, "convexity_gap": 0.5}
    assert delta(start, end)["convexity_gap"] == -0.5  # the sign |Δ| drops


def test_delta_names_the_metrics_that_do_not_match():
    with pytest.raises(
        ValueError, match=r"only at start \['convexity_gap'\].*only at end \['bh'\]"
    ):
        delta({"barrier_height": 1.0, "convexity_gap": 2.0}, {"barrier_height": 1.0, "bh": 2.0})


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "loss", "problem"),
    [
        ([0, 0.5, 0.5, 1], [1, 2, 3, 4], "strictly increasing"),
        ([0, 0.7, 0.4, 1], [1, 2, 3, 4], "strictly increasing"),
        ([0.1, 0.5, 1], [1, 2, 3], "start at 0 and end at 1"),
        ([0, 0.5, 0.9], [1, 2, 3], "start at 0 and end at 1"),
        ([0, 0.5, 1], [1, math.nan, 3], "loss is not finite at index 1"),
        ([0, 0.5, 1], [1, math.inf, 3], "loss is not finite"),
        ([0, math.nan, 1], [1, 2, 3], "t is not finite"),
        ([0, 0.5, 1], [1, 2], "differ in length"),
        ([0], [1], "at least 2 grid points"),
        ([[0, 1]], [[1, 2]], "1-D"),
    ],
)
@pytest.mark.parametrize("metric", [*lmc_metrics.METRICS, "chord_excess", "curve_metrics"])
def test_invalid_curves_are_refused_with_the_problem_named(t, loss, problem, metric):
    with pytest.raises(ValueError, match=problem):
        getattr(lmc_metrics, metric)(t, loss)


def test_endpoints_within_tolerance_are_accepted():
    assert barrier_height([1e-13, 0.5, 1 - 1e-13], [0, 1, 0]) == pytest.approx(1)


# --- properties ---------------------------------------------------------------------------------


@st.composite
def curves(draw):
    """A random grid 0 = t_0 < ... < t_{N-1} = 1 (N in 2..30) and finite losses on it."""
    n = draw(st.integers(2, 30))
    gaps = np.array(draw(st.lists(st.floats(1e-3, 1.0), min_size=n - 1, max_size=n - 1)))
    t = np.concatenate([[0.0], np.cumsum(gaps) / gaps.sum()])
    t[-1] = 1.0
    loss = np.array(draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n)))
    return t, loss


def lower_envelope_height(t, loss):
    """max_j of L_j above the lower convex hull of the points (t_j, L_j), by monotone chain."""
    hull = []
    for point in zip(t, loss, strict=True):
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (x1 - x0) * (point[1] - y0) - (y1 - y0) * (point[0] - x0) > 0:
                break  # a left turn: hull[-1] stays on the lower hull
            hull.pop()
        hull.append(point)
    xs, ys = zip(*hull, strict=True)
    return float(np.max(loss - np.interp(t, xs, ys)))


@settings(max_examples=200, deadline=None)
@given(curves())
def test_icg_equals_cg_and_cg_bounds_bh_bounds_zero(curve):
    t, loss = curve
    bh, cg = barrier_height(t, loss), convexity_gap(t, loss)
    assert improved_convexity_gap(t, loss) == cg
    assert cg >= bh >= 0


@settings(max_examples=200, deadline=None)
@given(curves())
def test_cg_is_the_height_above_the_lower_convex_envelope(curve):
    t, loss = curve
    scale = max(1.0, float(np.abs(loss).max()))
    assert convexity_gap(t, loss) == pytest.approx(lower_envelope_height(t, loss), abs=1e-9 * scale)


@settings(max_examples=200, deadline=None)
@given(curves(), st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_bh_and_cg_ignore_an_added_linear_function(curve, a, b):
    t, loss = curve
    tilted = loss + a + b * t
    scale = max(1.0, float(np.abs(loss).max()), abs(a), abs(b))
    assert barrier_height(t, tilted) == pytest.approx(barrier_height(t, loss), abs=1e-9 * scale)
    assert convexity_gap(t, tilted) == pytest.approx(convexity_gap(t, loss), abs=1e-9 * scale)


@settings(max_examples=100, deadline=None)
@given(curves())
def test_chord_barrier_of_a_sub_grid_reads_only_its_points(curve):
    # The lemma behind ICG = CG: the sub-grid's own matrix is the sub-matrix of the full one.
    t, loss = curve
    full = lmc_metrics._chord_barriers(t, loss)
    for a, b in [(0, len(t) - 1), (len(t) // 3, len(t) - 1), (0, max(1, len(t) // 2))]:
        np.testing.assert_array_equal(
            lmc_metrics._chord_barriers(t[a : b + 1], loss[a : b + 1]), full[a : b + 1, a : b + 1]
        )


# --- F1 -----------------------------------------------------------------------------------------


class FixedLogits(torch.nn.Module):
    """A stand-in classifier whose logits are the batch's `input_ids` rows as floats."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        return type("Output", (), {"logits": input_ids.float()})()


def test_f1_of_the_positive_class_on_a_hand_made_example():
    # predictions 1 1 0 0 1 against labels 1 0 1 0 1: TP 2, FP 1, FN 1, TN 1.
    # precision 2/3, recall 2/3, F1 = 2·2 / (2·2 + 1 + 1) = 2/3; accuracy 3/5.
    logits = torch.tensor([[0, 1], [0, 1], [1, 0], [1, 0], [0, 1]])
    labels = torch.tensor([1, 0, 1, 0, 1])
    mask = torch.ones_like(logits)
    batches = [(logits[:3], mask[:3], labels[:3]), (logits[3:], mask[3:], labels[3:])]
    result = classifier.evaluate(FixedLogits(), batches, positive=1)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert classifier.f1_score(true_pos=2, false_pos=1, false_neg=1) == pytest.approx(2 / 3)
    assert "f1" not in classifier.evaluate(FixedLogits(), batches)  # accuracy-only tasks
    with pytest.raises(ValueError, match="F1 is undefined"):
        classifier.f1_score(0, 0, 0)


def test_f1_is_the_score_of_qqp_only():
    assert examples.positive_class("glue_qqp") == 1  # is_duplicate = 1
    assert examples.positive_class("glue_mnli") is None
    assert examples.positive_class("movie_sentiment") is None


# --- seed pairs, steps, tables ------------------------------------------------------------------

PAIRS = ["42-43", "42-44", "43-44"]


def pair_curves(heights: dict[str, tuple[float, float]], n: int = 5) -> pd.DataFrame:
    """`seed_pair_lines` output: per pair, a sine bump of the given height at steps 0 and 10,
    accuracy 0.8 and F1 0.5 + height along the line."""
    rows = []
    for pair, by_step in heights.items():
        for step, h in zip((0, 10), by_step, strict=True):
            for t in np.linspace(0, 1, n):
                bump = h * math.sin(math.pi * t)
                rows.append({"pair": pair, "step": step, "t": t, "loss": 1 + bump,
                             "accuracy": 0.8, "f1": 0.5 - bump})  # fmt: skip
    return pd.DataFrame(rows)


# BH at step 0 and at step 10 of each pair: the loss's bump heights
HEIGHTS = {"42-43": (0.1, 0.4), "42-44": (0.3, 0.2), "43-44": (0.2, 0.6)}


def three_seed_barriers() -> pd.DataFrame:
    return lmc_tables.barriers(pair_curves(HEIGHTS)).assign(model="m")


def test_barriers_per_pair_step_and_quantity():
    table = three_seed_barriers()
    assert sorted(set(table.pair)) == PAIRS
    assert set(table.step) == {0, 10}
    assert set(table.quantity) == {"loss", "error", "f1_error"}  # F1 measured: its error too
    loss = table[table.quantity == "loss"].set_index(["pair", "step"])
    for pair, (start, end) in HEIGHTS.items():
        assert loss.loc[(pair, 0), "barrier_height"] == pytest.approx(start)
        assert loss.loc[(pair, 10), "barrier_height"] == pytest.approx(end)
    f1_error = table[table.quantity == "f1_error"].set_index(["pair", "step"])
    assert f1_error.loc[("42-43", 10), "barrier_height"] == pytest.approx(0.4)  # 1 − F1: 0.5 + bump
    assert f1_error.loc[("42-43", 10), "endpoint_mean"] == pytest.approx(0.5)
    assert (table[table.quantity == "error"].barrier_height == 0).all()  # constant accuracy


def test_delta_runs_from_step_0_and_keeps_sign_and_magnitude_apart():
    change = lmc_tables.deltas(three_seed_barriers())
    bh = change[(change.quantity == "loss") & (change.metric == "barrier_height")]
    bh = bh.set_index("pair")
    assert (bh.first_step == 0).all() and (bh.last_step == 10).all()
    assert bh.loc["42-43", "delta"] == pytest.approx(0.3)
    assert bh.loc["42-44", "delta"] == pytest.approx(-0.1)
    assert bh.loc["42-44", "abs_delta"] == pytest.approx(0.1)


def test_report_table_has_mean_min_max_over_pairs_baselines_and_both_deltas():
    table = lmc_tables.report_table(three_seed_barriers(), "loss")
    assert list(table.columns) == ["metric", "m", "m min", "m max"]
    assert list(table.metric) == [
        "endpoints", "BH", "CG", "ICG", "rebasin",
        "endpoints (step 0)", "BH (step 0)", "CG (step 0)", "ICG (step 0)", "rebasin (step 0)",
        "|ΔBH|", "|ΔCG|", "|ΔICG|", "|Δrebasin|", "ΔBH", "ΔCG", "ΔICG", "Δrebasin",
    ]  # fmt: skip
    row = table.set_index("metric")
    assert list(row.loc["BH"]) == pytest.approx([0.4, 0.2, 0.6])  # mean, min, max at step 10
    assert list(row.loc["BH (step 0)"]) == pytest.approx([0.2, 0.1, 0.3])  # the baseline
    # signed Δ per pair: +0.3, −0.1, +0.4; |Δ| per pair: 0.3, 0.1, 0.4
    assert list(row.loc["ΔBH"]) == pytest.approx([0.2, -0.1, 0.4])
    assert list(row.loc["|ΔBH|"]) == pytest.approx([0.8 / 3, 0.1, 0.4])
    assert row.loc["endpoints", "m"] == pytest.approx(1.0)
    assert row.loc["ICG", "m"] == row.loc["CG", "m"]


def test_summary_gives_the_spread_over_pairs_and_the_data_record():
    curve = pd.DataFrame(
        {"pair": "seeds_full", "path": ["line"] * 3 + ["bezier"] * 3,
         "t": [0, 0.5, 1] * 2, "loss": [1, 2, 1, 1, 1.2, 1]}
    )  # fmt: skip
    record = {"m": {"dropped": {"lines": 9, "unreadable": 1}}}
    out = lmc_tables.summary(three_seed_barriers(), curve, record)
    assert out["seed_pairs"] == PAIRS
    bh = out["pairs"]["m"]["10"]["loss"]["BH"]
    assert (bh["mean"], bh["min"], bh["max"]) == pytest.approx((0.4, 0.2, 0.6))
    assert bh["by_pair"] == pytest.approx({"42-43": 0.4, "42-44": 0.2, "43-44": 0.6})
    assert set(out["pairs"]["m"]) == {"0", "10"}
    change = out["delta"]["m"]["loss"]["BH"]
    assert change["delta"] == pytest.approx({"mean": 0.2, "min": -0.1, "max": 0.4})
    assert change["abs_delta"]["min"] == pytest.approx(0.1)
    assert out["data"] == record
    assert out["curves"]["seeds_full"]["line"]["barrier_height"] == pytest.approx(1.0)
    assert out["curves"]["seeds_full"]["bezier"]["max_loss"] == pytest.approx(1.2)


def test_steps_figure_draws_the_spread_of_three_pairs():
    from lmlerp.report import figures

    fig = figures.connectivity_steps(three_seed_barriers())
    assert len(fig.axes) == 3 * 4  # loss, error, f1_error × BH, CG, ICG, rebasin
    band = fig.axes[0].collections  # seaborn's min–max band over the pairs
    assert band and band[0].get_paths()[0].vertices[:, 1].max() == pytest.approx(0.6)
    assert "3 pairs" in fig._suptitle.get_text()


# --- GLUE lines: counted, never dropped silently ------------------------------------------------


def write_qqp(path, lines):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_glue_drops_are_counted_by_reason(tmp_path):
    path = write_qqp(
        tmp_path / "train.tsv",
        [
            "0\t1\t2\tHow old?\tWhat age?\t1",
            "1\t3\t4\tA tab\tin\tthe text\t0",  # 7 fields: unreadable
            "2\t5\t6\tTruncated line",  # 4 fields: unreadable
            "3\t7\t8\tWhy?\tHow?\tmaybe",  # unknown label
            "4\t9\t10\t\tEmpty first?\t0",  # missing text
            '5\t11\t12\tA "quote\tstays\t0',  # an unmatched quote is text, not an error
        ],
    )
    table, dropped = examples.read_glue(path, "glue_qqp")
    assert dropped == {"lines": 6, "unreadable": 2, "unknown_label": 1, "missing_text": 1}
    assert list(table.question1) == ["How old?", 'A "quote']
    data = {"task": "glue_qqp", "glue": {"path": str(tmp_path), "fraction": 1.0,
            "eval_share": 0.5}, "seed": 0}  # fmt: skip
    train, held_out, record = examples.task_data(data, movie=pd.DataFrame())
    assert record["dropped"] == dropped and record["source"] == str(path)
    assert record["examples"] == {"train": len(train), "eval": len(held_out)}
    assert len(train) + len(held_out) == 2


def test_glue_file_with_nothing_readable_is_refused(tmp_path):
    path = write_qqp(tmp_path / "train.tsv", ["0\t1\t2\tonly four", "1\t2\t3\tq\tq\tyes"])
    with pytest.raises(ValueError, match=r"train\.tsv: every line .* dropped.*'unreadable': 1"):
        examples.read_glue(path, "glue_qqp")


def test_tabulate_writes_a_table_per_quantity_and_the_data_records(tmp_path):
    from lmlerp.connectivity import tasks
    from lmlerp.io import atomic

    barriers, record = tmp_path / "barriers.parquet", tmp_path / "data.json"
    lmc_tables.barriers(pair_curves(HEIGHTS)).to_parquet(barriers)
    atomic.write_json(record, {"dropped": {"lines": 3, "unreadable": 1}})
    quantities = ["loss", "error", "f1_error"]  # QQP's
    outputs = {name: tmp_path / f"{name}.out" for name in [*quantities, "barriers", "data"]}
    tasks.tabulate(
        barriers=[barriers], data=[record], outputs=outputs, models=["m"], quantities=quantities
    )
    f1 = pd.read_csv(outputs["f1_error"], sep="\t").set_index("metric")
    assert f1.loc["BH", "m max"] == pytest.approx(0.6)  # 1 − F1 rises by the bump
    assert atomic.read_json(outputs["data"]) == {"m": {"dropped": {"lines": 3, "unreadable": 1}}}
    assert set(pd.read_parquet(outputs["barriers"]).model) == {"m"}
