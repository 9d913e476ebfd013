"""The training loop shared by every model here: AdamW steps of the model's own loss.

θ0 and θC4 are pretrained, θ+ and θ− fine-tuned and the connectivity classifiers fine-tuned by
the same `train`: it minimises whatever loss the model returns for `labels` (next-token
cross-entropy L = −(1/T) Σ_t log p(x_t | x_<t) for a causal LM, class cross-entropy for a
classifier) with AdamW (Loshchilov & Hutter 2019), in micro-batches weighted by their targets.
Budgets are in steps, never seconds, so runs are deterministic: same config, same thread count
→ bitwise-identical weights.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from lmlerp.train.batches import Batch
from lmlerp.train.loss import autocast
from lmlerp.train.resume import Resume

BatchSource = Callable[[int], Iterator[Batch]]  # first step -> the batches from that step on


@dataclass(frozen=True)
class Optimisation:
    """AdamW settings and the step budget of one training run."""

    lr: float
    steps: int
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    micro_batch_size: int | None = None  # gradient accumulation; None = the whole batch at once
    max_grad_norm: float | None = None  # clip ‖∇‖₂ to this before each step; None = no clipping


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
        with autocast(device, dtype):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()}")
        (loss * (count / total)).backward()
        value += loss.item() * count / total
    return value


def clip_gradients(model: PreTrainedModel, max_norm: float | None) -> None:
    """Rescale the gradients to a global L2 norm ‖g‖₂ = √(Σ_p ‖g_p‖₂²) of at most `max_norm`;
    None leaves them as they are.

    Clipping is a choice of each recipe, never a hidden constant: the mode-connectivity report
    states "no clipping of norms"; Rofin et al. are silent, and the LM recipes here keep Hugging
    Face Trainer's default, max_grad_norm 1.0.
    """
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def train(
    model: PreTrainedModel,
    batches: Iterator[Batch] | BatchSource,
    opt: Optimisation,
    schedule: Callable[[int], float],
    device: str = "cpu",
    dtype: str = "float32",
    desc: str = "train",
    after_step: Callable[[int, PreTrainedModel], None] | None = None,
    resume: Resume | None = None,
) -> pd.DataFrame:
    """Run `opt.steps` AdamW steps of the model's own loss; return the curve (step, lr, loss).

    The loss is whatever the model returns for `labels`: next-token cross-entropy for a causal
    LM, class cross-entropy for a sequence classifier. `after_step(n, model)` is called after
    optimizer step n (1-based), e.g. to save a checkpoint every k steps. With `resume`, the run
    continues from its saved state (if any) and saves one every `resume.every` steps; `batches`
    is then a `BatchSource`, called with the first step to run (a plain iterator starts at 0).
    """
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    first, rows = resume.restore(model, optimizer, scheduler) if resume else (0, [])
    if first and not callable(batches):
        raise ValueError(f"{desc}: resuming from step {first} needs a BatchSource, not batches")
    stream = batches(first) if callable(batches) else batches
    steps = range(first, opt.steps)
    progress = tqdm(
        steps,
        desc=desc,
        file=sys.stderr,
        mininterval=5,
        ascii=True,
        initial=first,
        total=opt.steps,
    )
    for step in progress:
        try:
            loss = accumulate_gradients(model, next(stream), opt.micro_batch_size, device, dtype)
        except FloatingPointError as error:
            raise FloatingPointError(f"{desc}: {error} at step {step}") from error
        clip_gradients(model, opt.max_grad_norm)
        rows.append({"step": step, "lr": scheduler.get_last_lr()[0], "loss": loss})
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if after_step is not None:
            after_step(step + 1, model)
        if resume is not None and resume.due(step + 1, opt.steps):
            resume.save(step + 1, model, optimizer, scheduler, rows)
        progress.set_postfix(loss=f"{rows[-1]['loss']:.3f}", refresh=False)
    model.eval()
    return pd.DataFrame(rows)


def summary(history: pd.DataFrame) -> Mapping[str, float]:
    """Final training loss (mean of the last 10% of steps, to smooth batch noise)."""
    tail = history.loss.iloc[-max(1, len(history) // 10) :]
    return {"final_train_loss": float(tail.mean())}
