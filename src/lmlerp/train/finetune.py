"""Fine-tune θ0 into θ+ (positive sentences) and θ− (negative), and pick the best candidate.

Rofin et al. 2022 §3: θ0 is fine-tuned with the causal-LM loss on positive or negative movie
reviews; hyperparameters come from a grid (their Table 1: lr × batch × steps), one run per
candidate; `lmlerp.train.selection` keeps the one with the lowest validation perplexity.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.train import batches, loop, schedules
from lmlerp.train.loss import context_length, sentence_nll
from lmlerp.train.resume import Resume


def sentiment_sentences(movie: pd.DataFrame, sentiment: str, split: str) -> list[str]:
    """Texts of one sentiment ('positive'/'negative') in one split, in file order."""
    texts = movie[(movie.sentiment == sentiment) & (movie.split == split)].text.tolist()
    if not texts:
        raise ValueError(f"no {sentiment} sentences in the '{split}' split")
    return texts


def validation_nlls(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    movie: pd.DataFrame,
    max_len: int | None,
    device: str = "cpu",
) -> dict[str, float]:
    """Mean token NLL on positive and negative validation sentences: nll_pos_val, nll_neg_val
    (cut at `max_len` tokens; None: `sentence_nll`'s default)."""
    return {
        key: sentence_nll(
            model, tokenizer, sentiment_sentences(movie, sentiment, "val"), max_length=max_len,
            device=device,
        )
        for sentiment, key in (("positive", "nll_pos_val"), ("negative", "nll_neg_val"))
    }  # fmt: skip


def run(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    movie: pd.DataFrame,
    sentiment: str,
    candidate: Mapping[str, Any],
    hp: Mapping[str, Any],
    device: str = "cpu",
    dtype: str = "float32",
    resume: Resume | None = None,
) -> tuple[PreTrainedModel, pd.DataFrame, dict[str, float]]:
    """Fine-tune `model` on `sentiment` training sentences with one grid candidate.

    `candidate` holds lr, batch_size, steps; `hp` the shared seed, warmup_steps, weight_decay,
    max_grad_norm, pool_size. The seed fixes the data order and, through torch's global RNG (CPU
    and every CUDA device), the dropout masks: a hub θ0 such as GPT-2 Large trains with dropout
    0.1, so without it two runs of one candidate would differ.
    Metrics: val_ppl = exp(NLL on own-sentiment validation sentences), plus both NLLs.
    With `resume`, continues from its saved state and saves one every `resume.every` steps.
    """
    train_sequences = batches.encode_sentences(
        tokenizer, sentiment_sentences(movie, sentiment, "train")
    )
    max_len = context_length(model)  # None: the model sets no limit, sentences stay whole
    stream = functools.partial(
        batches.sentence_batches, train_sequences, candidate["batch_size"],
        batches.padding_id(tokenizer), max_len or max(map(len, train_sequences)), hp["seed"],
        hp["pool_size"],
    )  # fmt: skip
    opt = loop.Optimisation(
        lr=candidate["lr"],
        steps=candidate["steps"],
        weight_decay=hp["weight_decay"],
        micro_batch_size=hp.get("micro_batch_size"),
        max_grad_norm=hp["max_grad_norm"],
    )
    schedule = functools.partial(
        schedules.linear_schedule, warmup=hp["warmup_steps"], total=candidate["steps"]
    )
    torch.manual_seed(hp["seed"])  # dropout masks; seeds every CUDA device too
    history = loop.train(
        model, stream, opt, schedule, device, dtype, desc=f"finetune {sentiment}", resume=resume
    )
    nlls = validation_nlls(model, tokenizer, movie, max_len, device)
    own = nlls["nll_pos_val" if sentiment == "positive" else "nll_neg_val"]
    metrics = {"val_nll": own, "val_ppl": math.exp(own), **nlls, **loop.summary(history)}
    return model.cpu(), history, metrics
