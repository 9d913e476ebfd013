"""The 3-class sentiment judge: labels, Eq. 6, training, and pickle-free save/load."""

import json
import random

import numpy as np
import pytest
from safetensors.numpy import load_file
from sklearn.feature_extraction.text import TfidfVectorizer

from lmlerp.data.movie import rating_to_label
from lmlerp.score.sentiment_judge import LABELS, SentimentJudge, train

WORDS = {
    0: ["bad", "awful", "terrible", "boring", "dreadful"],
    1: ["the", "table", "chair", "street", "window"],
    2: ["great", "good", "lovely", "wonderful", "delightful"],
}
SETTINGS = {"max_features": 1000, "ngram_max": 2, "C": 10.0, "seed": 0}


def corpus(n_per_class: int = 30, seed: int = 0) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in WORDS.items():
        for _ in range(n_per_class):
            texts.append(" ".join(rng.choices(words, k=5)))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def judge() -> SentimentJudge:
    return train(*corpus(), **SETTINGS)


@pytest.mark.parametrize(
    ("rating", "label"),
    [(-4.0, 0), (-1.01, 0), (-1.0, 1), (-0.3, 1), (0.0, 1), (1.0, 1), (1.01, 2), (4.0, 2)],
)
def test_rating_to_label_band_edges_are_neutral(rating, label):
    assert rating_to_label(rating, neutral_band=1.0) == label


def test_rating_to_label_zero_band_keeps_only_zero_neutral():
    assert [rating_to_label(r, 0.0) for r in (-0.1, 0.0, 0.1)] == [0, 1, 2]


def test_positive_score_is_eq6_on_a_hand_computed_proba(judge, monkeypatch):
    proba = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.1, 0.8]])
    monkeypatch.setattr(judge, "predict_proba", lambda texts: proba)
    # 0·P(neg) + 0.5·P(neutral) + 1·P(pos): 0.15 + 0.5, 0, 0.5, 0.05 + 0.8
    np.testing.assert_allclose(judge.positive_score(["x"] * 4), [0.65, 0.0, 0.5, 0.85])


def test_judge_classifies_held_out_obvious_cases(judge):
    texts = ["What a great, lovely film", "awful and boring", "the chair by the window"]
    assert judge.accuracy(texts, [2, 0, 1]) == 1.0
    proba = judge.predict_proba(texts)
    assert proba.shape == (3, len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    score = judge.positive_score(texts)
    assert score[0] > 0.5 > score[1]


def test_features_match_scikit_learns_tfidf(judge):
    texts, _ = corpus(seed=1)
    reference = TfidfVectorizer(
        vocabulary=judge.vocabulary, ngram_range=(1, 2), sublinear_tf=True, lowercase=True
    )
    reference.fit(texts)  # fitting sets the fixed vocabulary; idf_ is replaced just below
    reference.idf_ = judge.idf
    np.testing.assert_allclose(
        judge.features(texts).toarray(), reference.transform(texts).toarray(), atol=1e-14
    )


def test_save_load_round_trip_is_exact_and_pickle_free(judge, tmp_path):
    texts, _ = corpus(seed=2)
    judge.save(tmp_path / "judge")
    files = sorted(p.name for p in (tmp_path / "judge").iterdir())
    assert files == ["judge.json", "vocabulary.json", "weights.safetensors"]
    weights = load_file(str(tmp_path / "judge" / "weights.safetensors"))
    assert {k: (v.dtype, v.shape) for k, v in weights.items()} == {
        "idf": (np.float64, judge.idf.shape),
        "coef": (np.float64, (3, len(judge.vocabulary))),
        "intercept": (np.float64, (3,)),
    }
    loaded = SentimentJudge.load(tmp_path / "judge")
    np.testing.assert_allclose(loaded.predict_proba(texts), judge.predict_proba(texts), atol=1e-12)
    assert loaded.settings() == judge.settings()


def test_save_leaves_no_temporary_behind(judge, tmp_path):
    judge.save(tmp_path / "judge")
    judge.save(tmp_path / "judge")  # overwriting works too
    assert [p.name for p in tmp_path.iterdir()] == ["judge"]


def test_training_is_deterministic():
    first, second = train(*corpus(), **SETTINGS), train(*corpus(), **SETTINGS)
    np.testing.assert_array_equal(first.coef, second.coef)
    np.testing.assert_array_equal(first.intercept, second.intercept)
    assert first.vocabulary == second.vocabulary


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        ([], [], "no texts"),
        (["good", "bad"], [2], "2 texts but 1 labels"),
        (["good", "bad", "great"], [2, 0, 2], "neutral"),
        (["good", "bad", "the"], [2, 0, 3], r"labels \[3\]"),
    ],
)
def test_train_rejects_bad_input(texts, labels, message):
    with pytest.raises(ValueError, match=message):
        train(texts, labels, **SETTINGS)


@pytest.mark.parametrize("name", ["weights.safetensors", "vocabulary.json", "judge.json"])
def test_load_names_the_missing_file(judge, tmp_path, name):
    judge.save(tmp_path / "judge")
    (tmp_path / "judge" / name).unlink()
    with pytest.raises(ValueError, match=name):
        SentimentJudge.load(tmp_path / "judge")


def test_load_names_a_vocabulary_that_does_not_fit_the_weights(judge, tmp_path):
    judge.save(tmp_path / "judge")
    vocabulary = dict(list(judge.vocabulary.items())[:-1])
    vocabulary = {term: rank for rank, term in enumerate(vocabulary)}  # one term fewer, no gap
    (tmp_path / "judge" / "vocabulary.json").write_text(json.dumps(vocabulary))
    with pytest.raises(ValueError, match=r"weights\.safetensors does not fit vocabulary\.json"):
        SentimentJudge.load(tmp_path / "judge")


def test_load_names_unsupported_settings(judge, tmp_path):
    judge.save(tmp_path / "judge")
    path = tmp_path / "judge" / "judge.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    with pytest.raises(ValueError, match=r"judge\.json: format_version"):
        SentimentJudge.load(tmp_path / "judge")


def test_evaluate_scores_held_out_rows_and_polar_test_sentences(judge):
    import pandas as pd

    from lmlerp.score.sentiment_judge import evaluate

    judge_table = pd.DataFrame(
        {
            "text": ["great good lovely", "bad awful boring", "the table chair", "good good"],
            "label": [2, 0, 1, 0],  # the last row is deliberately mislabelled: 3/4 correct
            "split": ["test", "test", "test", "test"],
        }
    )
    movie = pd.DataFrame(
        {
            "text": ["wonderful great", "dreadful awful", "lovely good", "street window"],
            "sentiment": ["positive", "negative", "negative", "neutral"],
            "split": ["test", "test", "test", "test"],
        }
    )
    result = evaluate(judge, judge_table, movie)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["polar_accuracy"] == pytest.approx(2 / 3)  # neutral rows are not polar
    assert (result["n_test"], result["n_polar"], result["n_train"]) == (4, 3, 0)
