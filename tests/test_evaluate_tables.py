"""A family's table (point × kind, intervals, drop counts, model metrics) and its trends."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from lmlerp.evaluate import statistics as st
from lmlerp.evaluate import tables
from lmlerp.score import text
from lmlerp.score.perplexity import mean_perplexity

INTERVALS = {"resamples": 200, "confidence": 0.95, "seed": 0}
KINDS = ("neutral", "positive", "negative", "fixed")
WORDS = np.array(["the", "movie", "was", "good", "bad", "great", "boring", "fun", "slow", "a"])


def family_samples(family, alphas, rng, n_prompts=8, per_prompt=3, beta=math.nan):
    """Samples whose positive score rises with α and whose perplexity peaks at α = 1/2."""
    effect = rng.normal(0, 0.05, n_prompts)
    rows = []
    for a in alphas:
        for p in range(n_prompts):
            kind = KINDS[p % len(KINDS)]
            for s in range(per_prompt):
                words = rng.choice(WORDS, rng.integers(0, 8))
                continuation = " ".join(words)
                scored = s < 2 and continuation != ""
                rows.append(
                    {
                        "family": family, "point": f"a{a}", "alpha": a, "beta": beta,
                        "prompt_id": f"{kind}-{p:04d}", "kind": kind, "sample_id": s,
                        "prompt": "The movie", "continuation": continuation,
                        "n_new_tokens": len(words) + 1, "ended": True,
                        "positive_score": 0.5 + 0.1 * a + effect[p] + rng.normal(0, 0.01),
                        "grammar": rng.random(),
                        "perplexity": 5 + 20 * a * (1 - a) + rng.random() if scored else math.nan,
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)


def model_metrics(samples):
    points = samples.groupby("point").alpha.first()
    return pd.DataFrame(
        {"family": samples.family.iloc[0], "point": points.index, "alpha": points.to_numpy(),
         "nll_pos": 2 - points.to_numpy(), "p_good": 0.1, "positive_score": 99.0}
    )  # fmt: skip


@pytest.fixture(scope="module")
def g1():
    return family_samples("g1", [-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5], np.random.default_rng(0))


@pytest.fixture(scope="module")
def g1_table(g1):
    return tables.family_table(g1, model_metrics(g1), intervals=INTERVALS)


def hand_made():
    """Two prompts: neutral with an empty continuation, positive without bigrams."""
    rows = [
        ("neutral-0000", "neutral", 0, "good movie here", 10.0),
        ("neutral-0000", "neutral", 1, "", math.nan),  # empty: cannot be scored
        ("positive-0000", "positive", 0, "wow", 20.0),
        ("positive-0000", "positive", 1, "yes", math.nan),  # beyond perplexity_samples
    ]
    frame = pd.DataFrame(
        rows, columns=["prompt_id", "kind", "sample_id", "continuation", "perplexity"]
    )
    frame = frame.assign(family="g1", point="a0.5", alpha=0.5, beta=math.nan, prompt="x",
                         positive_score=[0.2, 0.4, 0.6, 0.8], grammar=1.0)  # fmt: skip
    return frame


def test_drop_counts_on_a_hand_made_frame():
    frame = hand_made()
    table = tables.family_table(frame, pd.DataFrame({"point": ["a0.5"]}), intervals=INTERVALS)
    counts = [c for c in table.columns if c.startswith("n_")]
    got = table.set_index("kind")[counts].to_dict("index")
    assert got == {
        "all": {"n_samples": 4, "n_prompts": 2, "n_empty": 1, "n_perplexity": 2,
                "n_no_ngrams_1": 0, "n_no_ngrams_2": 1, "n_no_ngrams_3": 1},
        "neutral": {"n_samples": 2, "n_prompts": 1, "n_empty": 1, "n_perplexity": 1,
                    "n_no_ngrams_1": 0, "n_no_ngrams_2": 0, "n_no_ngrams_3": 0},
        "positive": {"n_samples": 2, "n_prompts": 1, "n_empty": 0, "n_perplexity": 1,
                     "n_no_ngrams_1": 0, "n_no_ngrams_2": 1, "n_no_ngrams_3": 1},
    }  # fmt: skip
    positive = table.set_index("kind").loc["positive"]
    assert all(math.isnan(positive[c]) for c in ("distinct_2", "distinct_2_lo", "distinct_2_hi"))
    pooled = table.set_index("kind").loc["all"]
    assert pooled.perplexity == 15.0 and pooled.distinct_2 == 1.0  # the neutral prompt's alone


def test_the_pooled_and_kind_rows_are_the_statistics_over_their_samples(g1, g1_table):
    for row in g1_table.itertuples():
        frame = g1[g1.point == row.point]
        frame = frame if row.kind == tables.ALL else frame[frame.kind == row.kind]
        assert row.positive_score == pytest.approx(frame.positive_score.mean())
        assert row.grammar == pytest.approx(frame.grammar.mean())
        assert row.perplexity == pytest.approx(mean_perplexity(frame.perplexity))
        assert row.perplexity_median == pytest.approx(frame.perplexity.median())
        for n in tables.NGRAMS:
            assert getattr(row, f"distinct_{n}") == pytest.approx(
                text.distinct_by_prompt(frame, n), nan_ok=True
            )


def test_every_interval_is_the_point_interval_with_the_one_seed(g1, g1_table):
    for row in g1_table.iloc[::4].itertuples():
        frame = g1[g1.point == row.point]
        frame = frame if row.kind == tables.ALL else frame[frame.kind == row.kind]
        for name, statistic in tables.STATISTICS.items():
            expected = st.point_intervals(frame, statistic, **INTERVALS)
            got = (getattr(row, name), getattr(row, f"{name}_lo"), getattr(row, f"{name}_hi"))
            assert got == pytest.approx(expected, nan_ok=True), (row.point, row.kind, name)


def test_rows_are_sorted_and_carry_every_column(g1_table):
    assert len(g1_table) == 7 * 5  # points × (4 kinds + all)
    assert g1_table.alpha.is_monotonic_increasing
    assert g1_table.kind.iloc[:5].tolist() == ["all", "fixed", "negative", "neutral", "positive"]
    stats = [f"{name}{end}" for name in tables.STATISTICS for end in ("", "_lo", "_hi")]
    assert list(g1_table.columns) == [
        "family", "point", "alpha", "beta", "kind", "n_samples", "n_prompts", "n_empty",
        "n_perplexity", "n_no_ngrams_1", "n_no_ngrams_2", "n_no_ngrams_3", *stats,
        "perplexity_median", "nll_pos", "p_good",
    ]  # fmt: skip
    assert (g1_table.positive_score_lo <= g1_table.positive_score).all()
    assert (g1_table.positive_score <= g1_table.positive_score_hi).all()


def test_model_metrics_are_the_points_for_every_kind(g1_table):
    per_point = g1_table.groupby("point")[["nll_pos", "p_good"]].nunique()
    assert (per_point == 1).all().all()
    np.testing.assert_allclose(g1_table.nll_pos, 2 - g1_table.alpha)
    assert (g1_table.positive_score < 2).all()  # computed from samples, not the metrics' 99


def test_missing_or_repeated_metrics_are_refused(g1):
    metrics = model_metrics(g1)
    with pytest.raises(ValueError, match=r"metrics lack points \['a1.5'\]"):
        tables.family_table(g1, metrics[metrics.point != "a1.5"], intervals=INTERVALS)
    with pytest.raises(ValueError, match="more than once"):
        tables.family_table(g1, pd.concat([metrics, metrics.iloc[:1]]), intervals=INTERVALS)
    with pytest.raises(ValueError, match=r"exactly \['resamples', 'confidence', 'seed'\]"):
        tables.family_table(g1, metrics, intervals={"resamples": 10, "seed": 0})


def test_the_table_is_reproducible_and_a_perplexity_fn_gives_the_same_numbers(g1, g1_table):
    again = tables.family_table(g1, model_metrics(g1), intervals=INTERVALS)
    pd.testing.assert_frame_equal(again, g1_table)
    by_fn = tables.family_table(
        g1, model_metrics(g1), intervals=INTERVALS, perplexity_fn=mean_perplexity
    )
    pd.testing.assert_frame_equal(by_fn, g1_table, check_exact=False, rtol=1e-12)


def test_g1_trends_show_the_barrier_and_the_monotone_positive_score(g1):
    trends = tables.family_trends(g1, "g1", intervals=INTERVALS)
    json.dumps(trends, allow_nan=False)
    assert sorted(trends["kinds"]) == ["all", "neutral"]
    pooled = trends["kinds"]["all"]
    assert pooled["points"] == ["a-0.5", "a0.0", "a0.25", "a0.5", "a0.75", "a1.0", "a1.5"]
    assert pooled["n_prompts"] == 8 and trends["kinds"]["neutral"]["n_prompts"] == 2
    barrier = pooled["perplexity"]["barrier"]
    assert (
        barrier["lo"] > 3
        and barrier["estimate"] == pytest.approx(5, abs=1)
        and barrier["at"] == 0.5
    )
    assert pooled["perplexity"]["relative_barrier"]["estimate"] == pytest.approx(1, abs=0.25)
    rho = pooled["positive_score"]["spearman"]
    assert rho["estimate"] == 1.0 and rho["hi"] == 1.0
    assert set(pooled["positive_score"]) == {"estimate", "lo", "hi", "spearman"}


def test_undefined_trends_become_none_and_unfit_families_are_refused():
    rng = np.random.default_rng(1)
    no_endpoint = family_samples("g1", [0.0, 0.5, 2.0], rng)
    barrier = tables.family_trends(no_endpoint, "g1", intervals=INTERVALS)["kinds"]["all"]
    assert barrier["perplexity"]["barrier"]["estimate"] is None
    with pytest.raises(ValueError, match="'g3' has no trends"):
        tables.family_trends(no_endpoint, "g3", intervals=INTERVALS)
    with pytest.raises(ValueError, match="not 'g2'"):
        tables.family_trends(no_endpoint, "g2", intervals=INTERVALS)
    plane = family_samples("g3", [0.0, 1.0], rng, beta=1.0)
    with pytest.raises(ValueError, match="1-D path"):
        tables.family_trends(plane, "g3", intervals=INTERVALS, trends={"perplexity": ("barrier",)})
