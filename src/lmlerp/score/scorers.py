"""Scorer plug-ins: the judges of a generated text, chosen by config (`scorers:`).

Three scores per continuation (Rofin et al. 2022, https://arxiv.org/abs/2211.12092, §4):

- sentiment, the positive score (Eq. 6): s(x) = 0·P(neg | x) + 0.5·P(neutral | x) + 1·P(pos | x);
- grammar, an acceptability a(x) ∈ [0, 1] (the paper: P(acceptable | x) of RoBERTa fine-tuned on
  CoLA), averaged over texts;
- judge LM, the perplexity of the continuation given its prompt (the paper: GPT-2 XL), always
  through `perplexity.conditional_perplexity`.

Each has an offline default and a `transformers` kind that reads a local `save_pretrained`
directory; the workflow says which directory (the library names no workflow path):

| score     | kind           | what it is                                   |
|-----------|----------------|----------------------------------------------|
| sentiment | `tfidf`        | `sentiment_judge.SentimentJudge` (trained here) |
| sentiment | `transformers` | 3-class sequence classifier (`classifiers`)  |
| grammar   | `harper`       | `text.grammar_ok` as 1.0 / 0.0 (no model)    |
| grammar   | `transformers` | P(acceptable) of a CoLA classifier           |
| judge_lm  | `smollm2`      | the converted SmolLM2-135M (`judge_lm`)      |
| judge_lm  | `transformers` | any causal LM, e.g. GPT-2 XL                 |

A plug-in is a loader in one of the plain registries below; the three protocols say what the
evaluation calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.score import judge_lm, perplexity, text
from lmlerp.score.classifiers import Classifier, ClassifierGrammar, ClassifierSentiment, precision
from lmlerp.score.sentiment_judge import SentimentJudge

# The kinds that read no model directory; every other kind reads `directories[score]`.
WITHOUT_MODEL = frozenset({("grammar", "harper")})


class Sentiment(Protocol):
    def positive_score(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) Eq. 6 positive score of each text, in [0, 1]."""
        ...


class Grammar(Protocol):
    def acceptability(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) acceptability of each text, in [0, 1]."""
        ...


class Fluency(Protocol):
    def perplexity(self, prompts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        """(N,) perplexity of each continuation given its prompt (nan when empty)."""
        ...


@dataclass
class Scorers:
    """The three judges of an evaluation job."""

    sentiment: Sentiment
    grammar: Grammar
    judge_lm: Fluency


class HarperGrammar:
    """a(x) = 1 when Harper reports no non-style lint, else 0 (`text.grammar_ok`)."""

    def acceptability(self, texts: Sequence[str]) -> np.ndarray:
        return text.grammar_ok(texts).astype(np.float64)


class JudgeLM:
    """Perplexity of continuations under a causal LM (`perplexity.conditional_perplexity`)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        batch_size: int,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.device, self.dtype = batch_size, device, dtype

    def perplexity(self, prompts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        return perplexity.conditional_perplexity(
            self.model,
            self.tokenizer,
            prompts,
            continuations,
            batch_size=self.batch_size,
            device=self.device,
            dtype=self.dtype,
        )


@dataclass(frozen=True)
class Context:
    """What every loader may use: the `scorers:` config, where to run, in which precision."""

    settings: Mapping[str, Any]
    device: str = "cpu"
    dtype: str = "float32"  # transformer classifiers
    judge_lm_dtype: str = "float32"

    def classifier(self, directory: str) -> Classifier:
        return Classifier.load(
            directory,
            batch_size=self.settings["batch_size"],
            device=self.device,
            dtype=self.dtype,
        )


def _tfidf(directory: str, ctx: Context) -> SentimentJudge:
    return SentimentJudge.load(directory)


def _sentiment_classifier(directory: str, ctx: Context) -> ClassifierSentiment:
    return ClassifierSentiment(ctx.classifier(directory), ctx.settings["sentiment_labels"])


def _harper(directory: None, ctx: Context) -> HarperGrammar:
    return HarperGrammar()


def _cola_classifier(directory: str, ctx: Context) -> ClassifierGrammar:
    return ClassifierGrammar(ctx.classifier(directory), ctx.settings["grammar_acceptable_label"])


def _judge_lm(directory: str, ctx: Context) -> JudgeLM:
    """Both judge-LM kinds are safetensors causal LMs; they differ only in where they come from."""
    model, tokenizer = judge_lm.load(directory, dtype=ctx.judge_lm_dtype, device=ctx.device)
    return JudgeLM(
        model,
        tokenizer,
        batch_size=ctx.settings["batch_size"],
        device=ctx.device,
        dtype=ctx.judge_lm_dtype,
    )


Loader = Callable[[Any, Context], Any]
REGISTRY: dict[str, dict[str, Loader]] = {
    "sentiment": {"tfidf": _tfidf, "transformers": _sentiment_classifier},
    "grammar": {"harper": _harper, "transformers": _cola_classifier},
    "judge_lm": {"smollm2": _judge_lm, "transformers": _judge_lm},
}


def reads_model(score: str, kind: str) -> bool:
    """Whether scorer `kind` of `score` reads a model directory (all but Harper)."""
    return (score, kind) not in WITHOUT_MODEL


def load(
    settings: Mapping[str, Any],
    directories: Mapping[str, str],
    *,
    device: str = "cpu",
    dtype: str = "float32",
    judge_lm_dtype: str = "float32",
) -> Scorers:
    """The configured scorers, each loaded from `directories[score]` where it reads a model.

    Args:
        settings: the `scorers:` config (kinds, label order, batch size).
        directories: model directory per score name (the workflow's inputs); scores whose kind
            reads no model (`reads_model`) may be absent.
        device: where the transformer models run.
        dtype: the config's training dtype; with `precision` it gives the classifiers' dtype.
        judge_lm_dtype: the judge LM's dtype on a CPU; on CUDA bf16 wins when `dtype` asks for it.
    """
    classifiers = precision(device, dtype)
    if classifiers == "bfloat16":
        judge_lm_dtype = "bfloat16"
    ctx = Context(settings, device, classifiers, judge_lm_dtype)
    kinds = {score: _kind(settings, score) for score in REGISTRY}  # all checked before loading
    for score, kind in kinds.items():
        if reads_model(score, kind) and score not in directories:
            raise ValueError(f"scorer '{score}: {kind}' reads a model, but no directory was given")
    loaded = {
        score: REGISTRY[score][kind](directories[score] if reads_model(score, kind) else None, ctx)
        for score, kind in kinds.items()
    }
    return Scorers(**loaded)


def _kind(settings: Mapping[str, Any], score: str) -> str:
    kind = settings[score]
    if kind not in REGISTRY[score]:
        known = sorted(REGISTRY[score])
        raise ValueError(f"config key 'scorers.{score}': unknown kind {kind!r} (one of {known})")
    return kind
