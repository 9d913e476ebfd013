"""The 3-class sentiment judge: TF-IDF features and multinomial logistic regression.

The paper scores generations with a 3-class (negative / neutral / positive) classifier and
averages the positive score of Eq. 6 (Rofin et al. 2022, https://arxiv.org/abs/2211.12092).
Offline the classifier is trained here with scikit-learn and stored without pickle:
`weights.safetensors` holds idf, coef and intercept, `vocabulary.json` the term → column map,
`judge.json` the tokenisation settings. Trained and reloaded judges share one prediction path
(`SentimentJudge.predict_proba`), so they agree exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from lmlerp.io.atomic import atomic_path, write_json

LABELS = ("negative", "neutral", "positive")
FORMAT_VERSION = 1
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default: words of two or more characters
WEIGHTS, VOCABULARY, SETTINGS = "weights.safetensors", "vocabulary.json", "judge.json"
# What this version of `SentimentJudge.features` computes; a saved judge must say the same.
FIXED_SETTINGS = {
    "format_version": FORMAT_VERSION,
    "labels": list(LABELS),
    "sublinear_tf": True,
    "norm": "l2",
    "token_pattern": TOKEN_PATTERN,
}


class SentimentJudge:
    """TF-IDF (sublinear tf, l2 norm) followed by a softmax over 3 linear scores.

    Args:
        vocabulary: term → column of the feature matrix (columns 0 … V−1, each once).
        idf: (V,) inverse document frequencies.
        coef: (3, V) weights, rows in `LABELS` order.
        intercept: (3,) biases.
        ngram_max: features are word n-grams with 1 ≤ n ≤ ngram_max.
        lowercase: lowercase texts before tokenising.
    """

    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        *,
        ngram_max: int,
        lowercase: bool = True,
    ) -> None:
        n_terms = len(vocabulary)
        if sorted(vocabulary.values()) != list(range(n_terms)):
            raise ValueError(f"vocabulary columns must be 0 … {n_terms - 1}, each exactly once")
        _check_shape("idf", idf, (n_terms,))
        _check_shape("coef", coef, (len(LABELS), n_terms))
        _check_shape("intercept", intercept, (len(LABELS),))
        self.vocabulary = dict(vocabulary)
        # C order: safetensors.numpy.save_file writes a Fortran-ordered array (scikit-learn's coef_)
        # as if it were C-ordered, which silently transposes the weights.
        self.idf = np.ascontiguousarray(idf, dtype=np.float64)
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float64)
        self.ngram_max = ngram_max
        self.lowercase = lowercase
        # With a fixed vocabulary CountVectorizer needs no fitting.
        self._counter = CountVectorizer(
            vocabulary=self.vocabulary,
            lowercase=lowercase,
            token_pattern=TOKEN_PATTERN,
            ngram_range=(1, ngram_max),
            dtype=np.float64,
        )

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF matrix (N, V): (1 + log tf)·idf per term, then each row scaled to unit l2 norm."""
        counts = self._counter.transform(list(texts)).tocsr()  # (N, V)
        # Sublinear tf exactly as TfidfVectorizer(sublinear_tf=True) computes it.
        counts.data = 1.0 + np.log(counts.data)
        tfidf = counts @ sp.diags(self.idf)  # (N, V)
        norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())  # (N,)
        norms[norms == 0] = 1.0  # a text without known terms stays the zero vector
        return sp.csr_matrix(sp.diags(1.0 / norms) @ tfidf)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (N, 3), columns in `LABELS` order: softmax(x·Wᵀ + b)."""
        logits = self.features(texts) @ self.coef.T + self.intercept  # (N, 3)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Most probable class index (N,) per text."""
        return self.predict_proba(texts).argmax(axis=1)

    def positive_score(self, texts: Sequence[str]) -> np.ndarray:
        """Positive score per text (N,): 0·P(neg) + 0.5·P(neutral) + 1·P(pos).

        Rofin et al. 2022, Eq. 6; the paper reports its mean over generations.
        """
        return self.predict_proba(texts) @ np.array([0.0, 0.5, 1.0])

    def accuracy(self, texts: Sequence[str], labels: Sequence[int]) -> float:
        """Fraction of texts whose most probable class is the given label."""
        _check_inputs(texts, labels, need_all_classes=False)
        return float(np.mean(self.predict(texts) == np.asarray(labels)))

    def save(self, directory: str | os.PathLike) -> None:
        """Write the judge to `directory` atomically: safetensors weights and two JSON files."""
        with atomic_path(directory, directory=True) as tmp:
            save_file(
                {"idf": self.idf, "coef": self.coef, "intercept": self.intercept},
                str(tmp / WEIGHTS),
            )
            write_json(tmp / VOCABULARY, self.vocabulary)
            write_json(tmp / SETTINGS, self.settings())

    def settings(self) -> dict:
        """Everything besides the arrays that `load` needs to rebuild the same features."""
        return {**FIXED_SETTINGS, "ngram_max": self.ngram_max, "lowercase": self.lowercase}

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SentimentJudge:
        """Rebuild a judge written by `save`; nothing is unpickled.

        Raises:
            ValueError: a file is missing or does not fit the others (the error names it).
        """
        directory = Path(directory)
        for name in (WEIGHTS, VOCABULARY, SETTINGS):
            if not (directory / name).is_file():
                raise ValueError(f"judge directory {directory} lacks {name}")
        settings = json.loads((directory / SETTINGS).read_text())
        _check_settings(directory / SETTINGS, settings)
        vocabulary = json.loads((directory / VOCABULARY).read_text())
        weights = load_file(str(directory / WEIGHTS))
        if set(weights) != {"idf", "coef", "intercept"}:
            raise ValueError(
                f"{directory / WEIGHTS}: tensors {sorted(weights)}, need coef/idf/intercept"
            )
        try:
            return cls(
                vocabulary,
                **weights,
                ngram_max=settings["ngram_max"],
                lowercase=settings["lowercase"],
            )
        except ValueError as err:
            raise ValueError(f"{directory / WEIGHTS} does not fit {VOCABULARY}: {err}") from err


def train(
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    max_features: int,
    ngram_max: int,
    C: float,
    seed: int,
) -> SentimentJudge:
    """Fit TF-IDF + multinomial logistic regression on labelled texts (labels are `LABELS` indices).

    Args:
        max_features: keep the most frequent n-grams only.
        ngram_max: word n-grams with 1 ≤ n ≤ ngram_max.
        C: inverse l2 regularisation strength.
        seed: the solver's random_state (lbfgs is deterministic anyway).
    """
    _check_inputs(texts, labels, need_all_classes=True)
    vectorizer = TfidfVectorizer(
        lowercase=True,
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, ngram_max),
        max_features=max_features,
        sublinear_tf=True,
        norm="l2",
        dtype=np.float64,
    )
    features = vectorizer.fit_transform(list(texts))  # (N, V)
    # lbfgs with 3 classes fits the multinomial (softmax) model; its default 100 steps stop short.
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=1000, random_state=seed)
    model.fit(features, np.asarray(labels))
    return SentimentJudge(
        {term: int(col) for term, col in vectorizer.vocabulary_.items()},
        vectorizer.idf_,
        model.coef_,
        model.intercept_,
        ngram_max=ngram_max,
        lowercase=True,
    )


def _check_inputs(texts: Sequence[str], labels: Sequence[int], *, need_all_classes: bool) -> None:
    if len(texts) == 0:
        raise ValueError("no texts given")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    present = set(np.asarray(labels).tolist())
    unknown = present - set(range(len(LABELS)))
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not class indices 0, 1, 2 of {LABELS}")
    missing = [LABELS[k] for k in range(len(LABELS)) if k not in present]
    if need_all_classes and missing:
        raise ValueError(f"no training text of class {missing}; all of {LABELS} are needed")


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if np.shape(array) != shape:
        raise ValueError(f"{name} has shape {np.shape(array)}, expected {shape}")


def _check_settings(path: Path, settings: dict) -> None:
    for key, value in FIXED_SETTINGS.items():
        if settings.get(key) != value:
            raise ValueError(
                f"{path}: {key} is {settings.get(key)!r}, this version reads {value!r}"
            )
    ngram_max = settings.get("ngram_max")
    if not isinstance(ngram_max, int) or isinstance(ngram_max, bool) or ngram_max < 1:
        raise ValueError(f"{path}: ngram_max must be an integer >= 1, got {ngram_max!r}")
    if not isinstance(settings.get("lowercase"), bool):
        raise ValueError(
            f"{path}: lowercase must be true or false, got {settings.get('lowercase')!r}"
        )


def evaluate(judge: SentimentJudge, judge_table: pd.DataFrame, movie: pd.DataFrame) -> dict:
    """Held-out quality of the judge on movie sentences it never saw.

    accuracy: 3-class accuracy on the judge's own held-out movie rows (`split == "test"` of the
    judge table; labels from ratings). polar_accuracy: on the positive / negative sentences of
    the fine-tuning test split, the share whose positive score (Eq. 6) falls on the right side
    of 0.5 — the distinction the experiments rely on.
    """
    test = judge_table[judge_table.split == "test"]
    polar = movie[(movie.split == "test") & (movie.sentiment != "neutral")]
    scores = judge.positive_score(polar.text.tolist())
    truth = (polar.sentiment == "positive").to_numpy()
    return {
        "accuracy": judge.accuracy(test.text.tolist(), test.label.tolist()),
        "polar_accuracy": float(np.mean((scores > 0.5) == truth)),
        "n_test": len(test),
        "n_polar": len(polar),
        "n_train": int((judge_table.split == "train").sum()),
    }
