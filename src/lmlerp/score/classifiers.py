"""Transformers sequence classifiers as judges: Eq. 6 from sentiment, P(acceptable) from CoLA.

The paper's judges (Rofin et al. 2022 §4): cardiffnlp/twitter-roberta-base-sentiment for the
positive score and textattack/roberta-base-CoLA for grammar, read from local `save_pretrained`
directories — safetensors only (`checkpoints.require_safetensors`), never remote code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lmlerp.io import checkpoints
from lmlerp.score.judge_lm import DTYPES

# Eq. 6's weight of each sentiment class.
EQ6_WEIGHTS = {"negative": 0.0, "neutral": 0.5, "positive": 1.0}
# Classifier inputs are cut here (RoBERTa's context); continuations are ≤ 30 tokens in the paper.
MAX_TOKENS = 512


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
        """Open a classifier directory, `save_pretrained` or hub layout (safetensors only, every
        tensor checked by `checkpoints.check_tensors`, no remote code)."""
        checkpoints.check_tensors(directory, AutoModelForSequenceClassification)
        model = AutoModelForSequenceClassification.from_pretrained(
            directory,
            dtype=DTYPES[dtype],
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
