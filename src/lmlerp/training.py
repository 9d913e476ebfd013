"""Causal-LM training loops: pretraining from scratch (θ0, θC4) and fine-tuning (θ+, θ−).

Both minimise the next-token cross-entropy L = −(1/T) Σ_t log p(x_t | x_<t) with AdamW
(Loshchilov & Hutter 2019). Pretraining follows the paper's GPT-C4 recipe scaled down: linear
warmup then cosine decay to `min_lr_ratio`·lr. Fine-tuning uses warmup then linear decay to 0, as
the Hugging Face Trainer the paper used. Budgets are in steps, never seconds, so runs are
deterministic: same config, same thread count → bitwise-identical weights.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # input_ids, attention_mask, labels


def deterministic(threads: int) -> None:
    """Fix the sources of run-to-run variation on the CPU: thread count and kernel choice."""
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)


def cosine_schedule(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """lr multiplier: (step+1)/warmup during warmup, then min + (1−min)·½(1 + cos(π·progress))."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def linear_schedule(step: int, warmup: int, total: int) -> float:
    """lr multiplier: linear warmup, then linear decay to 0 at `total` (HF Trainer default)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def polynomial_schedule(
    step: int, warmup: int, total: int, power: float, end_ratio: float
) -> float:
    """lr multiplier: linear warmup, then end + (1 − end)·(1 − progress)^power (HF's
    `get_polynomial_decay_schedule_with_warmup`; power 1 and end 0 give `linear_schedule`)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return end_ratio + (1 - end_ratio) * (1 - progress) ** power


def token_stream(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> torch.Tensor:
    """All documents as one 1-D id tensor, each followed by EOS (GPT-2 packing)."""
    ids: list[int] = []
    for text in texts:
        ids += [*tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]
    if len(ids) < 2:
        raise ValueError("no text to train on: the token stream is empty")
    return torch.tensor(ids, dtype=torch.long)


def block_batches(
    stream: torch.Tensor, batch_size: int, block_size: int, seed: int
) -> Iterator[Batch]:
    """Endless batches of random contiguous windows of the stream, seeded."""
    if len(stream) <= block_size:
        raise ValueError(f"token stream of {len(stream)} tokens is shorter than a block")
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.arange(block_size)
    while True:
        starts = torch.randint(0, len(stream) - block_size, (batch_size, 1), generator=generator)
        ids = stream[starts + offsets]  # (B, T)
        yield ids, torch.ones_like(ids), ids


def encode_sentences(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Each sentence as [EOS] + tokens + [EOS]: the model learns how reviews start and end."""
    eos = tokenizer.eos_token_id
    return [[eos, *tokenizer.encode(t, add_special_tokens=False), eos] for t in texts]


def pad(sequences: Sequence[Sequence[int]], pad_id: int, max_len: int) -> Batch:
    """Right-pad to the longest sequence (cut at max_len); padding is masked out of the loss."""
    length = min(max_len, max(len(s) for s in sequences))
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        seq = seq[:length]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask, ids.masked_fill(mask == 0, -100)


def sentence_batches(
    sequences: Sequence[Sequence[int]], batch_size: int, pad_id: int, max_len: int, seed: int
) -> Iterator[Batch]:
    """Endless shuffled epochs of padded sentence batches, grouped by length, seeded.

    Each epoch is a random permutation cut into pools of 16 batches; inside a pool sentences are
    sorted by length before batching and the batches are shuffled again. Padding then costs a few
    per cent instead of ≈40% of the compute, while every batch stays a random draw.
    """
    if len(sequences) < batch_size:
        raise ValueError(f"{len(sequences)} sentences cannot fill one batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    pool = 16 * batch_size
    while True:
        order = torch.randperm(len(sequences), generator=generator).tolist()
        order = order[: len(order) - len(order) % batch_size]  # drop the ragged tail
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(sequences[i]))
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        for k in torch.randperm(len(batches), generator=generator).tolist():
            yield pad([sequences[i] for i in batches[k]], pad_id, max_len)


def _autocast(device: str, dtype: str):
    if dtype == "bfloat16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Optimisation:
    """AdamW settings and the step budget of one training run."""

    lr: float
    steps: int
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    micro_batch_size: int | None = None  # gradient accumulation; None = the whole batch at once


def predicted_targets(labels: torch.Tensor) -> int:
    """What a mean loss averages over: the shifted non-padding tokens of causal-LM labels [B, T],
    or one class label per example for a sequence classifier [B]."""
    return int((labels[:, 1:] != -100).sum()) if labels.dim() == 2 else len(labels)


def accumulate_gradients(
    model: PreTrainedModel, batch: Batch, micro_batch_size: int | None, device: str, dtype: str
) -> float:
    """Backpropagate one batch in micro-batches; return its loss.

    The batch loss is the mean over its predicted targets, L = Σ_m n_m·L_m / Σ_m n_m, where L_m is
    micro-batch m's mean loss over its n_m targets (non-padding tokens, or examples for a
    classifier; `predicted_targets`). Weighting each
    micro-batch by n_m makes the accumulated gradient equal the whole batch's, padding or not,
    so a large effective batch (GPT-C4: 1,024 sequences) fits on one GPU.
    """
    size = micro_batch_size or len(batch[0])
    parts = list(zip(*(t.split(size) for t in batch), strict=True))
    counts = [predicted_targets(labels) for _, _, labels in parts]
    total, value = sum(counts), 0.0
    for (ids, mask, labels), count in zip(parts, counts, strict=True):
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        with _autocast(device, dtype):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()}")
        (loss * (count / total)).backward()
        value += loss.item() * count / total
    return value


def train(
    model: PreTrainedModel,
    batches: Iterator[Batch],
    opt: Optimisation,
    schedule: Callable[[int], float],
    device: str = "cpu",
    dtype: str = "float32",
    desc: str = "train",
    after_step: Callable[[int, PreTrainedModel], None] | None = None,
) -> pd.DataFrame:
    """Run `opt.steps` AdamW steps of the model's own loss; return the curve (step, lr, loss).

    The loss is whatever the model returns for `labels`: next-token cross-entropy for a causal
    LM, class cross-entropy for a sequence classifier. `after_step(n, model)` is called after
    optimizer step n (1-based), e.g. to save a checkpoint every k steps.
    """
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rows = []
    progress = tqdm(range(opt.steps), desc=desc, file=sys.stderr, mininterval=5, ascii=True)
    for step in progress:
        try:
            loss = accumulate_gradients(model, next(batches), opt.micro_batch_size, device, dtype)
        except FloatingPointError as error:
            raise FloatingPointError(f"{desc}: {error} at step {step}") from error
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        rows.append({"step": step, "lr": scheduler.get_last_lr()[0], "loss": loss})
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if after_step is not None:
            after_step(step + 1, model)
        progress.set_postfix(loss=f"{rows[-1]['loss']:.3f}", refresh=False)
    model.eval()
    return pd.DataFrame(rows)


@torch.no_grad()
def mean_nll(model: PreTrainedModel, batches: Iterator[Batch], device: str = "cpu") -> float:
    """Mean next-token NLL (nats per predicted token) over batches; padding (-100) never counts."""
    model.to(device).eval()
    total, count = 0.0, 0
    for ids, mask, labels in batches:
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        targets = labels[:, 1:].to(device)  # token t is predicted from tokens < t
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), targets, ignore_index=-100, reduction="sum"
        )
        total += nll.item()
        count += int((targets != -100).sum())
    if count == 0:
        raise ValueError("no tokens to evaluate")
    return total / count


def stream_windows(stream: torch.Tensor, block_size: int, max_tokens: int, batch_size: int = 16):
    """Consecutive non-overlapping windows of a validation stream, at most `max_tokens` tokens."""
    stream = stream[: max(block_size, min(len(stream), max_tokens))]
    windows = [stream[i : i + block_size] for i in range(0, len(stream) - 1, block_size)]
    windows = [w for w in windows if len(w) > 1]
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        yield pad([w.tolist() for w in chunk], 0, block_size)


def sentence_nll(
    model: PreTrainedModel,
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    max_len: int,
    device: str = "cpu",
    batch_size: int = 64,
) -> float:
    """Mean per-token NLL of encoded sentences (their first token, EOS, is context only).

    Sentences are batched in order of length (less padding); the result does not depend on it.
    """
    ordered = sorted(sequences, key=len)
    batches = (
        pad(ordered[i : i + batch_size], pad_id, max_len)
        for i in range(0, len(ordered), batch_size)
    )
    return mean_nll(model, batches, device)


def summary(history: pd.DataFrame) -> Mapping[str, float]:
    """Final training loss (mean of the last 10% of steps, to smooth batch noise)."""
    tail = history.loss.iloc[-max(1, len(history) // 10) :]
    return {"final_train_loss": float(tail.mean())}
