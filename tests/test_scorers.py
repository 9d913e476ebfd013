"""Scorer plug-ins on tiny random RoBERTa classifiers and GPT-2s written to tmp_path (no hub)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_hub import save_causal_lm, save_classifier, write_hub

from lmlerp import config
from lmlerp.io.checkpoints import CheckpointError
from lmlerp.score import perplexity, scorers
from lmlerp.score import sentiment_judge as judge
from lmlerp.score import text as text_scores
from lmlerp.score.sentiment_judge import SentimentJudge

TEXTS = [
    "the movie was good",
    "bad",
    "the plot was very very boring but the movie was fun",
    "",
    "a great movie and a bad plot",
]
SETTINGS = {
    "sentiment": "transformers",
    "grammar": "transformers",
    "judge_lm": "transformers",
    "sentiment_labels": ["negative", "neutral", "positive"],
    "grammar_acceptable_label": 1,
    "batch_size": 2,
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """resources/hub stand-ins: sentiment (known probabilities), grammar (random), judge_lm."""
    root = tmp_path_factory.mktemp("hub")
    write_hub(root, sentiment_bias=np.log([0.2, 0.3, 0.5]).tolist())
    save_classifier(root / "cola_known", 2, bias=np.log([0.1, 0.9]).tolist())
    texts = ["good fun great", "bad boring awful", "the movie was a movie"] * 4
    trained = judge.train(texts, [2, 0, 1] * 4, max_features=100, ngram_max=1, C=1.0, seed=0)
    trained.save(root / "judge")
    return root


def directories(hub):
    return {name: str(hub / name) for name in ("sentiment", "grammar", "judge_lm")}


# --- sentiment: Eq. 6 -----------------------------------------------------------------------


def test_eq6_from_known_class_probabilities(hub):
    loaded = scorers.load(SETTINGS, directories(hub))
    # P(neg, neutral, pos) = (0.2, 0.3, 0.5) for every text → 0·0.2 + 0.5·0.3 + 1·0.5 = 0.65
    np.testing.assert_allclose(loaded.sentiment.positive_score(TEXTS), 0.65, rtol=1e-6)


def test_label_order_maps_classes_to_eq6_weights(hub):
    settings = {**SETTINGS, "sentiment_labels": ["positive", "negative", "neutral"]}
    loaded = scorers.load(settings, directories(hub))
    # class 0 (p 0.2) is positive, class 2 (p 0.5) neutral → 1·0.2 + 0·0.3 + 0.5·0.5 = 0.45
    np.testing.assert_allclose(loaded.sentiment.positive_score(TEXTS), 0.45, rtol=1e-6)


@pytest.mark.parametrize(
    "labels", [["negative", "positive"], ["negative", "neutral", "neutral"]], ids=["2", "dup"]
)
def test_sentiment_labels_must_name_each_class_once(hub, labels):
    classifier = scorers.Classifier.load(hub / "sentiment", batch_size=4, dtype="float32")
    with pytest.raises(ValueError, match="sentiment labels"):
        scorers.ClassifierSentiment(classifier, labels)


# --- grammar: P(acceptable) -----------------------------------------------------------------


@pytest.mark.parametrize(("acceptable", "expected"), [(1, 0.9), (0, 0.1)])
def test_grammar_is_the_probability_of_the_acceptable_class(hub, acceptable, expected):
    classifier = scorers.Classifier.load(hub / "cola_known", batch_size=3, dtype="float32")
    grammar = scorers.ClassifierGrammar(classifier, acceptable)
    np.testing.assert_allclose(grammar.acceptability(TEXTS), expected, rtol=1e-6)


def test_grammar_is_softmax_of_each_text_alone_whatever_the_batch(hub):
    """Batched, length-sorted and padded scores equal softmax(z)[acceptable] of each text alone."""
    model, tokenizer = save_classifier(hub / "grammar_again", 2)
    with torch.no_grad():
        alone = [
            model(**tokenizer(t, return_tensors="pt")).logits.softmax(-1)[0, 1].item()
            for t in TEXTS
        ]
    for batch_size in (1, 2, 5):
        loaded = scorers.load({**SETTINGS, "batch_size": batch_size}, directories(hub))
        np.testing.assert_allclose(loaded.grammar.acceptability(TEXTS), alone, rtol=1e-5)
    assert len(set(np.round(alone, 6))) > 1  # the random model does tell the texts apart


def test_acceptable_label_outside_the_model_is_refused(hub):
    classifier = scorers.Classifier.load(hub / "grammar", batch_size=4, dtype="float32")
    with pytest.raises(ValueError, match=r"grammar_acceptable_label 2 .* \(0 … 1\)"):
        scorers.ClassifierGrammar(classifier, 2)


def test_harper_grammar_is_grammar_ok_as_a_number():
    texts = ["This is a good movie.", "This are a movie movie."]
    values = scorers.HarperGrammar().acceptability(texts)
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, text_scores.grammar_ok(texts).astype(float))


# --- judge LM -------------------------------------------------------------------------------


def test_perplexity_scorer_agrees_with_conditional_perplexity(hub):
    loaded = scorers.load(SETTINGS, directories(hub))
    prompts = ["the movie was", "a", "the plot", "but"]
    continuations = [" good fun", " bad movie and a boring plot", "", " not very great"]
    model, tokenizer = save_causal_lm(hub / "lm_reference")
    expected = perplexity.conditional_perplexity(
        model, tokenizer, prompts, continuations, batch_size=1
    )
    got = loaded.judge_lm.perplexity(prompts, continuations)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert math.isnan(got[2]) and np.isfinite(got[[0, 1, 3]]).all()


def test_judge_lm_dtype_on_cpu_follows_judge_lm_dtype(hub):
    fp32 = scorers.load(SETTINGS, directories(hub), dtype="bfloat16")
    bf16 = scorers.load(SETTINGS, directories(hub), judge_lm_dtype="bfloat16")
    assert fp32.judge_lm.model.dtype == torch.float32  # dtype: bfloat16 means bf16 on CUDA only
    assert fp32.grammar.classifier.model.dtype == torch.float32
    assert bf16.judge_lm.model.dtype == torch.bfloat16 and bf16.judge_lm.dtype == "bfloat16"


@pytest.mark.parametrize(
    ("device", "dtype", "expected"),
    [("cpu", "bfloat16", "float32"), ("cuda", "bfloat16", "bfloat16"),
     ("cuda:1", "bfloat16", "bfloat16"), ("cuda", "float32", "float32")],
)  # fmt: skip
def test_scorers_run_in_bf16_on_cuda_when_dtype_asks(device, dtype, expected):
    assert scorers.precision(device, dtype) == expected


# --- safetensors only -----------------------------------------------------------------------


@pytest.mark.parametrize("score", ["sentiment", "grammar", "judge_lm"])
def test_pickled_weights_are_refused_naming_the_directory(hub, tmp_path, score):
    pickled = tmp_path / f"pickled_{score}"
    model, _ = save_causal_lm(pickled) if score == "judge_lm" else save_classifier(pickled, 3)
    (pickled / "model.safetensors").unlink()
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    dirs = {**directories(hub), score: str(pickled)}
    with pytest.raises(CheckpointError, match=rf"{pickled}.*pytorch_model\.bin"):
        scorers.load(SETTINGS, dirs)


# --- kinds from config ----------------------------------------------------------------------


def test_offline_kinds_select_the_offline_scorers(hub):
    settings = {**SETTINGS, "sentiment": "tfidf", "grammar": "harper", "judge_lm": "smollm2"}
    dirs = {"sentiment": str(hub / "judge"), "judge_lm": str(hub / "judge_lm")}
    loaded = scorers.load(settings, dirs)
    assert isinstance(loaded.sentiment, SentimentJudge)
    assert isinstance(loaded.grammar, scorers.HarperGrammar)
    assert isinstance(loaded.judge_lm, scorers.JudgeLM)
    texts = ["good fun great", "bad boring awful"]
    expected = SentimentJudge.load(hub / "judge").positive_score(texts)
    np.testing.assert_array_equal(loaded.sentiment.positive_score(texts), expected)


def test_transformers_kinds_select_the_classifiers(hub):
    loaded = scorers.load(SETTINGS, directories(hub))
    assert isinstance(loaded.sentiment, scorers.ClassifierSentiment)
    assert isinstance(loaded.grammar, scorers.ClassifierGrammar)
    assert isinstance(loaded.judge_lm, scorers.JudgeLM)


def test_only_harper_reads_no_model():
    kinds = [(score, kind) for score, registry in scorers.REGISTRY.items() for kind in registry]
    assert [k for k in kinds if not scorers.reads_model(*k)] == [("grammar", "harper")]


def test_unknown_kind_is_refused_by_load():
    with pytest.raises(ValueError, match=r"scorers\.grammar.*'lexicon'.*harper"):
        scorers.load({**SETTINGS, "grammar": "lexicon"}, {"sentiment": "s", "judge_lm": "j"})


def test_a_scorer_without_its_model_directory_is_named():
    with pytest.raises(ValueError, match=r"scorer 'sentiment: transformers' reads a model"):
        scorers.load(SETTINGS, {})


@pytest.mark.parametrize(
    ("key", "value"),
    [("sentiment", "vader"), ("judge_lm", "gpt2"), ("grammar", "Harper"),
     ("sentiment_labels", ["negative", "neutral", "neutral"]), ("batch_size", 0)],
)  # fmt: skip
def test_schema_rejects_a_bad_scorer_setting_naming_the_key(key, value):
    tiny = yaml.safe_load(Path(__file__).with_name("configs").joinpath("tiny.yaml").read_text())
    tiny["scorers"][key] = value
    with pytest.raises(config.ConfigError, match=rf"config key 'scorers\.{key}"):
        config.validate(tiny)
