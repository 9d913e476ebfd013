"""Pretrain a GPT-2 from scratch on one corpus: θ0, and θC4 on disjoint text with another seed.

θC4 stands in for the paper's GPT-C4 (DistilGPT-2 architecture trained on C4): the same
architecture and tokenizer as θ0, but an independent initialisation and disjoint data, so the two
are *not* connected by fine-tuning — the decorrelated experiment interpolates them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerBase

from lmlerp.train import batches, loop, loss, schedules
from lmlerp.train.resume import Resume


def gpt2(vocab_size: int, eos_id: int, arch: Mapping[str, int], seed: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 (Radford et al. 2019) of the configured shape, dropout off."""
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=arch["n_positions"],
        n_embd=arch["n_embd"],
        n_layer=arch["n_layer"],
        n_head=arch["n_head"],
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def run(
    train_tokens: np.ndarray,
    val_tokens: np.ndarray,
    name: str,
    tokenizer: PreTrainedTokenizerBase,
    arch: Mapping[str, int],
    hp: Mapping[str, Any],
    seed: int,
    device: str = "cpu",
    dtype: str = "float32",
    resume: Resume | None = None,
) -> tuple[GPT2LMHeadModel, pd.DataFrame, dict[str, float]]:
    """Train on windows of `train_tokens`; measure perplexity on `val_tokens` (both packed
    streams, typically token files' memory maps, so memory does not grow with the corpus).

    Returns the model, the loss curve and metrics {val_nll, val_ppl, train_tokens, ...}, where
    val_ppl = exp(mean NLL per token) on up to `eval_tokens` validation tokens. With `resume`,
    continues from its saved state and saves one every `resume.every` steps.
    """
    model = gpt2(len(tokenizer), tokenizer.eos_token_id, arch, seed)
    opt = loop.Optimisation(
        lr=hp["lr"],
        steps=hp["steps"],
        weight_decay=hp["weight_decay"],
        betas=tuple(hp["betas"]),
        eps=hp["eps"],
        micro_batch_size=hp.get("micro_batch_size"),
        max_grad_norm=hp["max_grad_norm"],
    )
    schedule = functools.partial(
        schedules.cosine_schedule,
        warmup=hp["warmup_steps"],
        total=hp["steps"],
        min_ratio=hp["min_lr_ratio"],
    )
    stream = functools.partial(
        batches.block_batches, train_tokens, hp["batch_size"], hp["block_size"], seed
    )
    history = loop.train(
        model, stream, opt, schedule, device, dtype, desc=f"pretrain {name}", resume=resume
    )
    windows = batches.stream_windows(val_tokens, hp["block_size"], hp["eval_tokens"])
    val_nll = loss.mean_nll(model, windows, device)
    metrics = {
        "val_nll": val_nll,
        "val_ppl": math.exp(val_nll),
        "train_tokens": len(train_tokens),
        "tokens_seen": hp["steps"] * hp["batch_size"] * hp["block_size"],
        "parameters": sum(p.numel() for p in model.parameters()),
        **loop.summary(history),
    }
    return model.cpu(), history, metrics
