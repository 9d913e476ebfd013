"""Batches for causal-LM training and evaluation: packed token streams and padded sentences.

Pretraining reads random windows of a packed token file (GPT-2's recipe, `lmlerp.io.tokens`);
fine-tuning pads sentences [EOS] + text + [EOS] and masks the padding out of the loss (-100).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # input_ids, attention_mask, labels


def block_batches(
    stream: np.ndarray, batch_size: int, block_size: int, seed: int, start: int = 0
) -> Iterator[Batch]:
    """Endless batches of random contiguous windows of the stream (a token file's memory map),
    seeded: batch s is a function of (seed, s) alone, and only its windows are ever read. From
    batch `start` on (the skipped batches' draws are made, their windows not cut: resuming
    costs nothing)."""
    if len(stream) <= block_size:
        raise ValueError(f"token stream of {len(stream)} tokens is shorter than a block")
    generator = torch.Generator().manual_seed(seed)
    offsets = np.arange(block_size)
    high = len(stream) - block_size
    for _ in range(start):
        torch.randint(0, high, (batch_size, 1), generator=generator)
    while True:
        starts = torch.randint(0, high, (batch_size, 1), generator=generator)
        ids = torch.from_numpy(stream[starts.numpy() + offsets].astype(np.int64))  # (B, T)
        yield ids, torch.ones_like(ids), ids


def encode_sentences(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Each sentence as [EOS] + tokens + [EOS]: the model learns how reviews start and end."""
    eos = tokenizer.eos_token_id
    return [[eos, *tokenizer.encode(t, add_special_tokens=False), eos] for t in texts]


def padding_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that pads a batch: any will do (padding is masked); the tokenizer's own first."""
    for token in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token is not None:
            return token
    return 0


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
    sequences: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    max_len: int,
    seed: int,
    pool_size: int = 512,
    start: int = 0,
) -> Iterator[Batch]:
    """Endless shuffled epochs of padded sentence batches, grouped by length, seeded.

    Each epoch is a random permutation cut into pools of ⌊pool_size / batch_size⌋ batches (at
    least one); inside a pool sentences are sorted by length before batching, and the batches of
    the epoch are shuffled again. Padding then costs a few per cent instead of ≈40% of the
    compute, while every batch stays a random draw — as long as a pool is a random part of the
    data, not all of it: a pool as large as the data sorts the whole epoch by length, and every
    epoch then cuts nearly the same batches (the old 16 batches × 256 exceed an SST-5 class of
    ≈3,300 sentences). Keep pool_size well below the number of sentences.

    The stream starts at batch `start`: every epoch has ⌊N / batch_size⌋ batches, so whole
    epochs are skipped by drawing their two permutations only (`skipped_epochs`).
    """
    if len(sequences) < batch_size:
        raise ValueError(f"{len(sequences)} sentences cannot fill one batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    pool = max(1, pool_size // batch_size) * batch_size
    per_epoch = len(sequences) // batch_size
    skip = skipped_epochs(generator, len(sequences), per_epoch, start, draws=2)
    while True:
        order = torch.randperm(len(sequences), generator=generator).tolist()
        order = order[: len(order) - len(order) % batch_size]  # drop the ragged tail
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: len(sequences[i]))
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        for k in torch.randperm(len(batches), generator=generator).tolist()[skip:]:
            yield pad([sequences[i] for i in batches[k]], pad_id, max_len)
        skip = 0


def skipped_epochs(
    generator: torch.Generator, n: int, per_epoch: int, start: int, draws: int
) -> int:
    """Advance `generator` past the whole epochs before batch `start` of an epoch-shuffled
    stream whose epoch draws `randperm(n)` (and, with draws=2, `randperm(per_epoch)`); return
    the batches to skip inside the current epoch."""
    epochs, skip = divmod(start, per_epoch)
    for _ in range(epochs):
        torch.randperm(n, generator=generator)
        if draws == 2:
            torch.randperm(per_epoch, generator=generator)
    return skip


def stream_windows(stream: np.ndarray, block_size: int, max_tokens: int, batch_size: int = 16):
    """Consecutive non-overlapping windows of a validation stream, at most `max_tokens` tokens
    (only those are read from a memory map)."""
    stream = stream[: max(block_size, min(len(stream), max_tokens))]
    windows = [stream[i : i + block_size] for i in range(0, len(stream) - 1, block_size)]
    windows = [w for w in windows if len(w) > 1]
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        yield pad([w.tolist() for w in chunk], 0, block_size)
