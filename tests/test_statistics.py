"""The bootstrap over prompts: coverage, width, duplicated prompts, seeds, barriers, Spearman ρ."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from lmlerp.evaluate import statistics as st
from lmlerp.score import text

SETTINGS = {"resamples": 400, "confidence": 0.95}


def population(n_prompts: int, per_prompt: int, rng, mu=0.5, prompt_sd=0.2, sample_sd=0.3):
    """Samples x = μ + u_p + e_ps: prompts differ (u_p), so samples of a prompt are correlated."""
    effect = rng.normal(0, prompt_sd, n_prompts)
    return pd.DataFrame(
        {
            "prompt_id": np.repeat([f"p{i:03d}" for i in range(n_prompts)], per_prompt),
            "x": mu
            + np.repeat(effect, per_prompt)
            + rng.normal(0, sample_sd, n_prompts * per_prompt),
        }
    )


def test_the_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2026)
    covered = 0
    for trial in range(100):
        frame = population(40, 5, rng)
        _, lo, hi = st.point_intervals(frame, st.sample_mean("x"), seed=trial, **SETTINGS)
        covered += lo <= 0.5 <= hi
    assert covered >= 90


def test_the_interval_shrinks_with_more_prompts():
    rng = np.random.default_rng(0)
    width = {}
    for n in (20, 320):
        _, lo, hi = st.point_intervals(
            population(n, 5, rng), st.sample_mean("x"), seed=0, **SETTINGS
        )
        width[n] = hi - lo
    assert width[320] < width[20] / 2.5  # ≈ 1/√16 = 1/4 in expectation


def test_a_prompt_drawn_twice_counts_twice_and_is_relabelled():
    # prompt a: one sample "a a" (distinct-1 = 1/2), x = 0; prompt b: three samples of
    # distinct words (distinct-1 = 1), x = 1.
    frame = pd.DataFrame(
        {
            "prompt_id": ["a", "b", "b", "b"],
            "continuation": ["a a", "b c", "d e", "f g"],
            "x": [0.0, 1.0, 1.0, 1.0],
        }
    )
    prompts = st.prompts_of(frame)
    draws = np.array([[0, 0], [1, 1], [0, 1]])
    # Both a's count as prompts (a merged a would score distinct-1 of ["a a", "a a"] = 1/4).
    by_prompt = st.replicates(frame, lambda f: text.distinct_by_prompt(f, 1), prompts, draws)
    np.testing.assert_allclose(by_prompt, [0.5, 1.0, 0.75])
    np.testing.assert_allclose(st.replicates(frame, st.distinct(1), prompts, draws), by_prompt)
    # A sample mean weighs samples: b's three samples outweigh a's one.
    np.testing.assert_allclose(
        st.replicates(frame, st.sample_mean("x"), prompts, draws), [0, 1, 0.75]
    )
    relabelled = []
    st.replicates(frame, lambda f: relabelled.append(list(f.prompt_id)) or 0.0, prompts, draws[:1])
    assert relabelled == [[0, 1]]


@pytest.mark.parametrize(
    ("fast", "slow"),
    [
        (st.sample_mean("x"), lambda f: float(f.x.mean())),
        (st.sample_mean("x"), st.ColumnStatistic("x", np.nanmean)),
        (st.distinct(2), lambda f: text.distinct_by_prompt(f, 2)),
    ],
)
def test_the_fast_ratio_path_equals_the_generic_one(fast, slow):
    rng = np.random.default_rng(1)
    frame = population(12, 4, rng)
    frame.loc[::5, "x"] = math.nan  # unscored samples
    words = np.array(["a", "b", "c", "d", "e"])
    frame["continuation"] = [" ".join(rng.choice(words, rng.integers(0, 5))) for _ in range(48)]
    settings = {"seed": 3, **SETTINGS}
    np.testing.assert_allclose(
        st.point_intervals(frame, fast, **settings), st.point_intervals(frame, slow, **settings)
    )


def test_intervals_are_determined_by_the_seed():
    frame = population(30, 3, np.random.default_rng(5))
    runs = [st.point_intervals(frame, st.sample_mean("x"), seed=s, **SETTINGS) for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0][0] == runs[2][0] and runs[0][1:] != runs[2][1:]


def test_nan_replicates_are_left_out_and_an_undefined_estimate_has_no_interval():
    assert st.percentile_interval(1.0, np.array([0.0, math.nan, 2.0]), 0.5) == (0.5, 1.5)
    assert all(map(math.isnan, st.percentile_interval(math.nan, np.array([1.0]), 0.9)))
    # Prompt "b" has no trigram: replicates that draw only "b" are NaN.
    frame = pd.DataFrame({"prompt_id": ["a", "b"], "continuation": ["x y z", "x y"]})
    draws = np.array([[0, 1], [1, 1]])
    values = st.replicates(frame, st.distinct(3), st.prompts_of(frame), draws)
    assert values[0] == 1.0 and math.isnan(values[1])


def test_an_infinite_value_spoils_only_the_replicates_that_draw_it():
    counts = np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(
        st.ratio(np.array([3.0, math.inf]), np.ones(2), counts), [3, math.inf]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resamples": 0, "confidence": 0.9}, "resamples"),
        ({"resamples": 9, "confidence": 1.0}, "confidence"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    frame = population(3, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        st.point_intervals(frame, st.sample_mean("x"), seed=0, **kwargs)


# --- barriers and rank correlations of a path -------------------------------------------------

ALPHA = [-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5]


def test_the_barrier_of_a_concave_path_is_its_peak_above_the_endpoints():
    m = np.array([1 + 4 * a * (1 - a) for a in ALPHA])  # peak 2 at α = 1/2, endpoints 1
    m[0] = 100.0  # outside [0, 1]: ignored
    absolute, relative = st.barrier(ALPHA, m)
    assert absolute == pytest.approx(1.0) and relative == pytest.approx(1.0)


def test_the_barrier_of_a_convex_path_is_negative():
    m = np.array([2 - a * (1 - a) for a in ALPHA])  # interior max at α = 1/4 and 3/4: 2 - 3/16
    absolute, relative = st.barrier(ALPHA, m)
    assert absolute == pytest.approx(-3 / 16) and relative == pytest.approx(-3 / 32)


def test_the_barrier_is_nan_where_it_is_undefined_and_skips_nan_interior_points():
    m = np.array([1.0, 1.0, 5.0, math.nan, 2.0, 1.0, 1.0])
    assert st.barrier(ALPHA, m)[0] == pytest.approx(4.0)
    assert math.isnan(st.barrier([-1.0, 0.5, 1.0], [1.0, 2.0, 1.0])[0])  # no α = 0
    assert math.isnan(st.barrier([0.0, 1.0], [1.0, 2.0])[0])  # no interior point
    assert math.isnan(st.barrier([0.0, 0.5, 1.0], [math.nan, 2.0, 1.0])[0])
    assert math.isnan(st.barrier([0.0, 0.5, 1.0], [1.0, math.nan, 1.0])[0])
    assert math.isnan(st.barrier([0.0, 0.5, 1.0], [1.0, 2.0, -1.0])[1])  # endpoints' mean 0
    rows = np.array([[1.0, 3.0, 1.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(st.barrier([0.0, 0.5, 1.0], rows)[0], [2.0, 0.0])


def test_spearman_matches_scipy_with_ties_and_leaves_out_nan_points():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=(50, 7)).astype(float)  # many ties
    expected = [scipy_stats.spearmanr(ALPHA, v).statistic for v in values]
    np.testing.assert_allclose(st.spearman(ALPHA, values), expected)
    np.testing.assert_allclose(st.ranks(values), scipy_stats.rankdata(values, axis=1))
    with_nan = np.array([3.0, 1.0, math.nan, 2.0, 4.0, 5.0, 6.0])
    kept = ~np.isnan(with_nan)
    assert st.spearman(ALPHA, with_nan) == pytest.approx(
        scipy_stats.spearmanr(np.array(ALPHA)[kept], with_nan[kept]).statistic
    )
    assert math.isnan(st.spearman([0.0, 1.0, 2.0], [1.0, math.nan, 2.0]))  # two points left
    assert math.isnan(st.spearman([0.0, 1.0, 2.0], [1.0, 1.0, 1.0]))  # constant


def path(alphas, rng, metric, n_prompts=25, per_prompt=4, prompt_sd=1.0, sample_sd=0.0):
    """Samples x = metric(α) + u_p + e at every point, with the same prompt effects u_p."""
    effect = rng.normal(0, prompt_sd, n_prompts)
    ids = np.repeat([f"p{i:02d}" for i in range(n_prompts)], per_prompt)
    return {
        f"a{a}": pd.DataFrame(
            {
                "prompt_id": ids,
                "x": metric(a) + np.repeat(effect, per_prompt)
                + rng.normal(0, sample_sd, len(ids)),
            }
        )
        for a in alphas
    }  # fmt: skip


def test_the_paired_bootstrap_cancels_the_prompts_shared_effect():
    # Large prompt effects, no sample noise: each replicate's path is the true one shifted by the
    # same constant, so its barrier is exactly the true one; unpaired draws would scatter it.
    rng = np.random.default_rng(0)
    by_point = path(ALPHA, rng, lambda a: 10 + 4 * a * (1 - a))
    result = st.path_trends(by_point, ALPHA, st.sample_mean("x"), seed=0, **SETTINGS)
    b = result["barrier"]
    assert b["estimate"] == pytest.approx(1.0)
    assert b["lo"] == pytest.approx(1.0) and b["hi"] == pytest.approx(1.0)
    assert b["at"] == 0.5 and b["finite_resamples"] == SETTINGS["resamples"]
    assert result["points"] == list(by_point) and result["n_prompts"] == 25
    assert result["lo"][0] < result["estimate"][0] - 0.1  # each point alone is uncertain


def test_the_per_point_intervals_of_a_path_are_the_point_intervals_with_its_seed():
    rng = np.random.default_rng(4)
    by_point = path(ALPHA, rng, lambda a: a, sample_sd=0.5)
    result = st.path_trends(by_point, ALPHA, st.sample_mean("x"), seed=11, **SETTINGS)
    for j, frame in enumerate(by_point.values()):
        expected = st.point_intervals(frame, st.sample_mean("x"), seed=11, **SETTINGS)
        assert (result["estimate"][j], result["lo"][j], result["hi"][j]) == pytest.approx(expected)


def test_a_monotone_path_has_spearman_1_and_an_upper_bound_of_1():
    rng = np.random.default_rng(1)
    by_point = path(ALPHA, rng, lambda a: 0.5 * a, prompt_sd=0.3, sample_sd=0.05)
    rho = st.path_trends(by_point, ALPHA, st.sample_mean("x"), seed=0, **SETTINGS)["spearman"]
    assert rho["estimate"] == 1.0 and rho["hi"] == 1.0 and rho["lo"] > 0.8


def test_a_paired_path_needs_the_same_prompts_at_every_point():
    by_point = path([0.0, 1.0], np.random.default_rng(0), lambda a: a)
    by_point["a1.0"] = by_point["a1.0"].iloc[4:]
    with pytest.raises(ValueError, match=r"point 'a1.0' does not hold the prompts of 'a0.0'"):
        st.path_trends(by_point, [0.0, 1.0], st.sample_mean("x"), seed=0, **SETTINGS)
