"""Scorer plug-ins: the judges of a generated text, chosen by config (`scorers:`).

Three scores per continuation (Rofin et al. 2022, https://arxiv.org/abs/2211.12092, §4):

- sentiment, the positive score (Eq. 6): s(x) = 0·P(neg | x) + 0.5·P(neutral | x) + 1·P(pos | x);
- grammar, an acceptability a(x) ∈ [0, 1] (the paper: P(acceptable | x) of RoBERTa fine-tuned on
  CoLA), averaged over texts;
- judge LM, the perplexity of the continuation given its prompt (the paper: GPT-2 XL), always
  through `metrics.conditional_perplexity`.

Each has an offline default and a `transformers` kind that reads a local `save_pretrained`
directory — safetensors only (`checkpoints.require_safetensors`), never remote code:

| score     | kind           | reads                   | what it is                              |
|-----------|----------------|-------------------------|-----------------------------------------|
| sentiment | `tfidf`        | results/judge           | `judge.SentimentJudge` (trained here)   |
| sentiment | `transformers` | resources/hub/sentiment | 3-class sequence classifier             |
| grammar   | `harper`       | —                       | `metrics.grammar_ok` as 1.0 / 0.0       |
| grammar   | `transformers` | resources/hub/grammar   | P(acceptable) of a CoLA classifier      |
| judge_lm  | `smollm2`      | results/models/judge_lm | the converted SmolLM2-135M (`judge_lm`) |
| judge_lm  | `transformers` | resources/hub/judge_lm  | any causal LM, e.g. GPT-2 XL            |

A plug-in is a loader in one of the plain registries below; the three protocols say what the
evaluation calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lmlerp import checkpoints, judge_lm, metrics
from lmlerp.judge import SentimentJudge

# Eq. 6's weight of each sentiment class.
EQ6_WEIGHTS = {"negative": 0.0, "neutral": 0.5, "positive": 1.0}
# Classifier inputs are cut here (RoBERTa's context); continuations are ≤ 30 tokens in the paper.
MAX_TOKENS = 512

# Where each kind's model comes from (a path of the workflow; None: nothing to read).
INPUTS: dict[str, dict[str, str | None]] = {
    "sentiment": {"tfidf": "results/judge", "transformers": "resources/hub/sentiment"},
    "grammar": {"harper": None, "transformers": "resources/hub/grammar"},
    "judge_lm": {"smollm2": "results/models/judge_lm", "transformers": "resources/hub/judge_lm"},
}


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


def precision(device: str, dtype: str) -> str:
    """Weights dtype of the transformer scorers: bf16 on CUDA when the config asks for bfloat16.

    On a CPU they stay float32: the classifiers are small, and bf16 is slower than fp32 on CPUs
    without avx512_bf16 (`judge_lm.load`). Softmax and log-softmax are taken in float32 either way.
    """
    return "bfloat16" if device.startswith("cuda") and dtype == "bfloat16" else "float32"


class Classifier:
    """A transformers sequence classifier that returns class probabilities, batched.

    Texts are sorted by length (less padding), cut at `MAX_TOKENS`, and the probabilities come
    back in input order: softmax(z) over the classes, computed in float32 from the logits z.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        batch_size: int,
        device: str = "cpu",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = device
        self.max_length = min(tokenizer.model_max_length, MAX_TOKENS)

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @classmethod
    def load(
        cls, directory: str | os.PathLike, *, batch_size: int, device: str = "cpu", dtype: str
    ) -> Classifier:
        """Open a `save_pretrained` classifier directory (safetensors only, no remote code)."""
        checkpoints.require_safetensors(directory)
        model = AutoModelForSequenceClassification.from_pretrained(
            directory,
            dtype=judge_lm.DTYPES[dtype],
            use_safetensors=True,
            trust_remote_code=False,
        )
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
        return cls(model, tokenizer, batch_size=batch_size, device=device)

    @torch.no_grad()
    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) float64 class probabilities, columns in the model's label order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.zeros((len(texts), self.num_labels))
        for b in range(0, len(order), self.batch_size):
            rows = order[b : b + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**batch).logits  # (B, C)
            out[rows] = logits.float().softmax(-1).double().cpu().numpy()
        return out


class ClassifierSentiment:
    """Eq. 6 from a 3-class classifier: s(x) = Σ_c w_c·P(c | x), w = (neg 0, neutral 0.5, pos 1).

    Args:
        classifier: its class k is `labels[k]` (cardiffnlp/twitter-roberta-base-sentiment:
            LABEL_0 negative, LABEL_1 neutral, LABEL_2 positive).
        labels: a permutation of negative, neutral, positive.
    """

    def __init__(self, classifier: Classifier, labels: Sequence[str]) -> None:
        if sorted(labels) != sorted(EQ6_WEIGHTS) or len(labels) != classifier.num_labels:
            raise ValueError(
                f"sentiment labels {list(labels)} must name each of {sorted(EQ6_WEIGHTS)} once, "
                f"one per class of the model ({classifier.num_labels} classes)"
            )
        self.classifier = classifier
        self.weights = np.array([EQ6_WEIGHTS[label] for label in labels])  # (C,)

    def positive_score(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.probabilities(texts) @ self.weights


class ClassifierGrammar:
    """a(x) = P(acceptable | x) of a CoLA classifier (Warstadt et al. 2019), class `acceptable`."""

    def __init__(self, classifier: Classifier, acceptable: int) -> None:
        if not 0 <= acceptable < classifier.num_labels:
            raise ValueError(
                f"grammar_acceptable_label {acceptable} is not a class of the model "
                f"(0 … {classifier.num_labels - 1})"
            )
        self.classifier = classifier
        self.acceptable = acceptable

    def acceptability(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.probabilities(texts)[:, self.acceptable]


class HarperGrammar:
    """a(x) = 1 when Harper reports no non-style lint, else 0 (`metrics.grammar_ok`)."""

    def acceptability(self, texts: Sequence[str]) -> np.ndarray:
        return metrics.grammar_ok(texts).astype(np.float64)


class JudgeLM:
    """Perplexity of continuations under a causal LM (`metrics.conditional_perplexity`)."""

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
        return metrics.conditional_perplexity(
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
SENTIMENT: dict[str, Loader] = {
    "tfidf": lambda directory, ctx: SentimentJudge.load(directory),
    "transformers": lambda directory, ctx: ClassifierSentiment(
        ctx.classifier(directory), ctx.settings["sentiment_labels"]
    ),
}
GRAMMAR: dict[str, Loader] = {
    "harper": lambda directory, ctx: HarperGrammar(),
    "transformers": lambda directory, ctx: ClassifierGrammar(
        ctx.classifier(directory), ctx.settings["grammar_acceptable_label"]
    ),
}
JUDGE_LM: dict[str, Loader] = {"smollm2": _judge_lm, "transformers": _judge_lm}
REGISTRY = {"sentiment": SENTIMENT, "grammar": GRAMMAR, "judge_lm": JUDGE_LM}


def input_paths(settings: Mapping[str, Any]) -> dict[str, str]:
    """The model directory each configured scorer reads, by score name (none for `harper`)."""
    paths = {score: INPUTS[score][_kind(settings, score)] for score in INPUTS}
    return {score: path for score, path in paths.items() if path is not None}


def load(
    settings: Mapping[str, Any],
    directories: Mapping[str, str],
    *,
    device: str = "cpu",
    dtype: str = "float32",
    judge_lm_dtype: str = "float32",
) -> Scorers:
    """The configured scorers, each loaded from `directories[score]` (see `input_paths`).

    Args:
        settings: the `scorers:` config (kinds, label order, batch size).
        directories: model directory per score name; any mapping with those keys (e.g. the
            Snakemake input object) will do.
        device: where the transformer models run.
        dtype: the config's training dtype; with `precision` it gives the classifiers' dtype.
        judge_lm_dtype: the judge LM's dtype on a CPU; on CUDA bf16 wins when `dtype` asks for it.
    """
    classifiers = precision(device, dtype)
    if classifiers == "bfloat16":
        judge_lm_dtype = "bfloat16"
    ctx = Context(settings, device, classifiers, judge_lm_dtype)
    loaded = {
        score: registry[_kind(settings, score)](
            directories[score] if INPUTS[score][_kind(settings, score)] else None, ctx
        )
        for score, registry in REGISTRY.items()
    }
    return Scorers(**loaded)


def _kind(settings: Mapping[str, Any], score: str) -> str:
    kind = settings[score]
    if kind not in REGISTRY[score]:
        known = sorted(REGISTRY[score])
        raise ValueError(f"config key 'scorers.{score}': unknown kind {kind!r} (one of {known})")
    return kind
