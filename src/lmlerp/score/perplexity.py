"""What a language model thinks of text: conditional perplexity, and next-token probabilities.

- fluency: the perplexity of a continuation given its prompt under a judge LM (the paper: GPT-2
  XL), tokenized so that BPE merges never cross the prompt boundary, padding masked, independent
  of batch size;
- Fig 4: the next-token probabilities of chosen words after "The movie was".
The test-set NLL of a path point (Fig 8) is `lmlerp.train.loss.sentence_nll`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.train.batches import pad, padding_id
from lmlerp.train.loss import autocast, context_length

AUTOCAST_DTYPES = ("float32", "bfloat16")


def _start_ids(tokenizer: PreTrainedTokenizerBase, bos: bool | int) -> list[int]:
    """The id prefixed to every text: none, the tokenizer's BOS (else EOS), or a given id."""
    if bos is False:
        return []
    if bos is True:
        token = tokenizer.bos_token_id
        token = tokenizer.eos_token_id if token is None else token
        if token is None:
            raise ValueError("bos=True but the tokenizer has neither a BOS nor an EOS token")
        return [token]
    return [int(bos)]


def conditional_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    continuations: Sequence[str],
    *,
    batch_size: int,
    device: str = "cpu",
    dtype: str = "float32",
    bos: bool | int = True,
) -> np.ndarray:
    """Perplexity of each continuation y given its prompt x under a (judge) causal LM.

        PPL(y | x) = exp(−(1/|y|) Σ_{t=1}^{|y|} log p(y_t | s, x, y_<t))

    where s is the optional start token. Prompt and continuation are tokenized separately and
    their ids concatenated, because BPE of the joined string is not always prefix-stable; the
    continuation is taken as generated (with its leading space), no separator is inserted.
    Only continuation tokens are scored: the prompt is context, padding is masked out of
    attention and loss. Texts are sorted by length for batching (less padding) and returned in
    input order; the values do not depend on `batch_size` (up to float rounding).

    Args:
        prompts, continuations: paired texts.
        batch_size: texts per forward pass.
        device: where the model runs (it is moved there).
        dtype: "float32", or "bfloat16" for autocast (a model loaded in bf16 runs in bf16
            either way); log-softmax is always taken in float32.
        bos: True prefixes `tokenizer.bos_token_id` (EOS when there is no BOS: GPT-2 and our
            models start texts with EOS); False prefixes nothing; an int prefixes that id (a
            judge whose BOS is a chat marker, e.g. SmolLM2-Instruct's <|im_start|>, may be better
            served by its <|endoftext|>).

    Returns:
        (N,) float64 perplexities; nan for an empty continuation (no token to score).

    Raises:
        ValueError: lengths differ, a text has no context (empty prompt and no start token),
            or a text exceeds the model's context window (the error names its index).
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if dtype not in AUTOCAST_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {AUTOCAST_DTYPES}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    start = _start_ids(tokenizer, bos)
    context = [start + ids for ids in _encode(tokenizer, prompts)]
    targets = _encode(tokenizer, continuations)
    limit = context_length(model)
    for i, (c, y) in enumerate(zip(context, targets, strict=True)):
        if y and not c:
            raise ValueError(f"text {i}: empty prompt and bos=False leave y_1 without context")
        if limit is not None and len(c) + len(y) > limit:
            raise ValueError(f"text {i}: {len(c) + len(y)} tokens exceed the context of {limit}")
    scored = [i for i, y in enumerate(targets) if y]
    scored.sort(key=lambda i: len(context[i]) + len(targets[i]), reverse=True)  # longest first
    ppl = np.full(len(prompts), math.nan)
    pad_id = padding_id(tokenizer)
    model.to(device).eval()
    for b in range(0, len(scored), batch_size):
        rows = scored[b : b + batch_size]
        nll = _continuation_nll(
            model,
            [context[i] for i in rows],
            [targets[i] for i in rows],
            pad_id,
            device,
            dtype,
        )
        ppl[rows] = np.exp(nll)
    return ppl


def _encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


@torch.no_grad()
def _continuation_nll(
    model: PreTrainedModel,
    context: Sequence[list[int]],
    targets: Sequence[list[int]],
    pad_id: int,
    device: str,
    dtype: str,
) -> np.ndarray:
    """Mean NLL per continuation token, one value per row of a right-padded batch."""
    sequences = [c + y for c, y in zip(context, targets, strict=True)]
    ids, mask, labels = pad(sequences, pad_id, max(map(len, sequences)))  # (B, T)
    for row, c in enumerate(context):
        labels[row, : len(c)] = -100  # the prompt is context, never scored
    with autocast(device, dtype):
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    logits = logits[:, :-1]  # (B, T-1, V); token t is predicted at position t-1
    shifted = labels[:, 1:].to(device)  # (B, T-1)
    scored = shifted != -100
    # log p(y_t) = z_t[y_t] − logsumexp(z_t), in float32 even when the model runs in bf16
    target_logit = logits.gather(-1, shifted.clamp(min=0).unsqueeze(-1)).squeeze(-1).float()
    token_logp = target_logit - logits.float().logsumexp(-1)  # (B, T-1)
    total = torch.where(scored, token_logp, 0.0).sum(1, dtype=torch.float64)  # (B,)
    counts = torch.tensor([len(y) for y in targets], dtype=torch.float64, device=device)
    return (-total / counts).cpu().numpy()


def mean_perplexity(perplexities: Iterable[float]) -> float:
    """Arithmetic mean of per-text perplexities, empty continuations (nan) left out.

    No outlier is dropped (DExperts silently drops PPL ≥ 1e4); nan if nothing is left.
    """
    values = np.asarray(list(perplexities), dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


@torch.no_grad()
def next_token_probabilities(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    words: Sequence[str],
    *,
    bos: bool | int = True,
) -> tuple[dict[str, float], dict[str, int]]:
    """P(first token of " word" | prompt) for each word, as in the paper's Fig 4 ("The movie was").

    A word is encoded with a leading space, as it would follow the prompt (which should not end
    in a space). A word of several tokens is represented by its first token only, so its
    probability is an upper bound of the word's; words that share a first token get the same
    value, and only words with distinct first tokens sum to at most 1.

    Returns:
        (probabilities, number of tokens of " word") keyed by word.
    """
    ids = _start_ids(tokenizer, bos) + tokenizer.encode(prompt, add_special_tokens=False)
    if not ids:
        raise ValueError("empty prompt and bos=False: nothing to condition on")
    model.eval()
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1]  # (V,)
    probs = logits.float().softmax(-1)
    encoded = {w: tokenizer.encode(" " + w, add_special_tokens=False) for w in words}
    return (
        {w: float(probs[e[0]]) for w, e in encoded.items()},
        {w: len(e) for w, e in encoded.items()},
    )
