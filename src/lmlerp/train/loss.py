"""The causal-LM loss evaluated: mean next-token NLL of batches and of test sentences.

One definition serves model selection (validation NLL), the test NLL of every path point (paper
Fig 8) and the connectivity curves of θ+ ↔ θ−, so their numbers are comparable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.train.batches import Batch, encode_sentences, pad, padding_id


def autocast(device: str, dtype: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when `dtype` is bfloat16; nothing otherwise."""
    if dtype == "bfloat16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def mean_nll(model: PreTrainedModel, batches: Iterator[Batch], device: str = "cpu") -> float:
    """Mean next-token NLL (nats per predicted token) over batches; padding (-100) never counts.

    The loss sees (N, V) rows: a (B, V, T) input would run CUDA's `nll_loss2d`, which has no
    deterministic kernel and raises under `torch.use_deterministic_algorithms`. Sums stay on
    the device (float64) and the count on the host: one synchronisation per call, not per batch.
    """
    model.to(device).eval()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for ids, mask, labels in batches:
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        targets = labels[:, 1:]  # token t is predicted from tokens < t
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),  # (B·(T−1), V)
            targets.flatten().to(device),
            ignore_index=-100,
            reduction="sum",
        )
        total += nll
        count += int((targets != -100).sum())
    if count == 0:
        raise ValueError("no tokens to evaluate")
    return total.item() / count


def context_length(model: PreTrainedModel) -> int | None:
    """The context window in tokens (GPT-2: n_positions, Llama: max_position_embeddings)."""
    config = model.config
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def sentence_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int | None = None,
    batch_size: int = 64,
    device: str | None = None,
) -> float:
    """Mean NLL per predicted token of [EOS] + sentence + [EOS] over sentences (paper Fig 8).

        NLL = −(1/N) Σ_s Σ_{t≥1} log p(x_t | x_<t),   N = number of predicted tokens

    The first EOS is context only; the closing EOS is scored. Sentences are cut at `max_length`
    tokens (default: the model's context, as fine-tuning cuts them) and batched in order of
    length (less padding); the value does not depend on the batching up to float rounding.
    """
    sequences = sorted(encode_sentences(tokenizer, texts), key=len)
    limit = max_length or context_length(model) or max(map(len, sequences), default=1)
    batches = (
        pad(sequences[i : i + batch_size], padding_id(tokenizer), limit)
        for i in range(0, len(sequences), batch_size)
    )
    if device is None:
        device = str(next(model.parameters()).device)
    return mean_nll(model, batches, device)
