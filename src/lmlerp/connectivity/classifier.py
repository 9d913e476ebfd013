"""Sequence classifiers fine-tuned from a pretrained LM with several seeds (mode connectivity).

The linear-mode-connectivity study (Thaman report; Juneja et al. 2022,
https://arxiv.org/abs/2205.12411) fine-tunes one pretrained model into a classifier twice, with
different seeds, and asks whether the two minima are linearly connected at several points of
fine-tuning. Here the pretrained model is our own θ0 (a GPT-2 with a fresh classification head,
`GPT2ForSequenceClassification`, which reads the last non-padding token) on the tasks of
`examples`; the paper scale uses hub encoders (BERT, RoBERTa).

A seed decides the head's initialisation, the data order and the dropout masks. Full fine-tuning
trains every weight; LoRA (Hu et al. 2021, https://arxiv.org/abs/2106.09685, via `peft`) trains
low-rank adapters and the head, and every checkpoint is the adapter merged into the weights
(W + (α/r)·B·A), so both kinds are plain safetensors classifiers of the same shape.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from lmlerp.connectivity.examples import encode, train_batches
from lmlerp.io import checkpoints
from lmlerp.io.atomic import atomic_path, link_or_copy, write_parquet
from lmlerp.train import loop, schedules
from lmlerp.train.batches import Batch
from lmlerp.train.resume import Resume, log

# Config attributes that hold dropout probabilities, per architecture family.
DROPOUT_KEYS = (
    "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout",  # GPT-2
    "hidden_dropout_prob", "attention_probs_dropout_prob",  # BERT, RoBERTa
)  # fmt: skip


def f1_score(true_pos: int, false_pos: int, false_neg: int) -> float:
    """F1 of the positive class, 2·TP / (2·TP + FP + FN) (the harmonic mean of precision and
    recall), from counts. Raises ValueError when there is no positive example and no positive
    prediction (F1 undefined)."""
    denominator = 2 * true_pos + false_pos + false_neg
    if denominator == 0:
        raise ValueError("F1 is undefined: no positive example and no positive prediction")
    return 2 * true_pos / denominator


@torch.no_grad()
def evaluate(
    model: PreTrainedModel, batches: Sequence[Batch], positive: int | None = None
) -> dict[str, float]:
    """Mean cross-entropy per example (`loss`) and `accuracy` of a classifier, dropout off; with a
    `positive` class, also its `f1` (QQP: positive = duplicate, `examples.positive_class`)."""
    model.eval()
    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    true_pos = false_pos = false_neg = 0
    for batch in batches:
        ids, mask, labels = (t.to(device) for t in batch)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # (B, classes)
        total += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        predicted = logits.argmax(-1)
        correct += int((predicted == labels).sum())
        count += len(labels)
        if positive is not None:
            true_pos += int(((predicted == positive) & (labels == positive)).sum())
            false_pos += int(((predicted == positive) & (labels != positive)).sum())
            false_neg += int(((predicted != positive) & (labels == positive)).sum())
    result = {"loss": total / count, "accuracy": correct / count}
    if positive is not None:
        result["f1"] = f1_score(true_pos, false_pos, false_neg)
    return result


def load_pretrained(source: str | Path, labels: int, dropout: float, seed: int) -> PreTrainedModel:
    """A classifier from a pretrained checkpoint with a fresh head initialised by `seed`.

    Every dropout probability the architecture has is set to `dropout` (paper: 0.1). `source` is
    a local directory (hub encoders are fetched first) holding safetensors; remote code is refused.
    """
    checkpoints.require_safetensors(source)
    config = AutoConfig.from_pretrained(str(source), num_labels=labels, trust_remote_code=False)
    for key in DROPOUT_KEYS:
        if hasattr(config, key):
            setattr(config, key, dropout)
    torch.manual_seed(seed)  # the head's initialisation is the seed's first draw
    model = AutoModelForSequenceClassification.from_pretrained(
        str(source), config=config, use_safetensors=True, trust_remote_code=False
    )
    checkpoints.check_finite(model.state_dict(), str(source))
    if model.config.pad_token_id is None:
        raise ValueError(f"{source}: the classifier needs a pad_token_id in its config")
    return model


def with_lora(model: PreTrainedModel, lora: Mapping[str, Any]) -> PreTrainedModel:
    """Wrap `model` in LoRA adapters on `lora['target_modules']`; the head stays fully trained."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora["rank"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D stores W transposed
        task_type="SEQ_CLS",
    )
    return get_peft_model(model, config)


def merged(model: PreTrainedModel) -> PreTrainedModel:
    """A plain classifier holding the weights a (LoRA-wrapped or plain) model computes with."""
    if hasattr(model, "merge_and_unload"):
        return copy.deepcopy(model).merge_and_unload().eval()
    return model


def checkpoint_steps(steps: int, every: int) -> list[int]:
    """Steps after which a checkpoint is written: 0 (the fine-tuning start: θ0 with the seed's
    fresh head, the report's non-fine-tuned baseline), every k-th step, and always the last."""
    return sorted({*range(0, steps + 1, every), steps})


def finetune(
    model: PreTrainedModel,
    tokenizer,
    train_examples: pd.DataFrame,
    hp: Mapping[str, Any],
    seed: int,
    out_dir: str | Path,
    lora: Mapping[str, Any] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    resume: Resume | None = None,
) -> pd.DataFrame:
    """Fine-tune a classifier with AdamW and polynomial decay after warmup; save checkpoints.

    `hp` holds steps, checkpoint_every, batch_size, lr, warmup_steps, power, end_lr_ratio,
    weight_decay, betas, eps, max_length (paper: batch 32, lr 1e-5, weight decay 0.1,
    β (0.9, 0.98), ε 1e-6). With `lora`, adapters are trained (at `lora['lr']`) and each
    checkpoint is the merged model. Checkpoints go to `out_dir/step-<n>` (safetensors), step 0
    before the first update, the directory appearing only once all are written — or, with
    `resume`, one by one, next to the training state saved at each of them, so that a re-run
    continues from the last. Returns the loss curve.
    """
    max_len = hp["max_length"]
    encoded = encode(tokenizer, train_examples, max_len)
    batches = functools.partial(
        train_batches, encoded, hp["batch_size"], tokenizer.pad_token_id, max_len, seed
    )
    if lora is not None:
        model = with_lora(model, lora)
    opt = loop.Optimisation(
        lr=lora["lr"] if lora is not None else hp["lr"],
        steps=hp["steps"],
        weight_decay=hp["weight_decay"],
        betas=tuple(hp["betas"]),
        eps=hp["eps"],
        max_grad_norm=hp["max_grad_norm"],
    )
    schedule = functools.partial(
        schedules.polynomial_schedule,
        warmup=hp["warmup_steps"],
        total=hp["steps"],
        power=hp["power"],
        end_ratio=hp["end_lr_ratio"],
    )
    keep = set(checkpoint_steps(hp["steps"], hp["checkpoint_every"]))
    with contextlib.ExitStack() as stack:
        if resume is None:
            out_dir = stack.enter_context(atomic_path(out_dir, directory=True))

        def save(step: int, current: PreTrainedModel) -> None:
            if step in keep:
                checkpoints.save(merged(current), tokenizer, Path(out_dir) / f"step-{step}")

        save(0, model)  # before any update: LoRA's B starts at 0, so its merge is θ0 + head
        torch.manual_seed(seed)  # dropout masks
        history = loop.train(
            model, batches, opt, schedule, device, dtype, desc=f"classifier seed {seed}",
            after_step=save, resume=resume,
        )  # fmt: skip
    return history


def finetune_seeds(
    source: str | Path,
    tokenizer,
    train_examples: pd.DataFrame,
    hp: Mapping[str, Any],
    seeds: Sequence[int],
    labels: int,
    out_dir: str | Path,
    lora: Mapping[str, Any] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    resume: Resume | None = None,
) -> pd.DataFrame:
    """`finetune` a fresh classifier from `source` once per seed into `out_dir/seed<seed>`.

    The directory appears only when every seed is done. With `resume` (its `every` is ignored:
    states are saved at the checkpoints), each seed works in `resume.directory/seed<seed>`
    (training state, checkpoints, and its loss curve once done: a re-run skips that seed); the
    caller removes it once every output is written. Returns the loss curves with a seed
    column.
    """

    def train(seed: int, checkpoints_dir: Path, state: Resume | None) -> pd.DataFrame:
        model = load_pretrained(source, labels, hp["dropout"], seed)
        return finetune(
            model, tokenizer, train_examples, hp, seed, checkpoints_dir, lora, device, dtype,
            state,
        )  # fmt: skip

    histories = []
    with atomic_path(out_dir, directory=True) as tmp:
        for seed in seeds:
            if resume is None:
                history = train(seed, seed_directory(tmp, seed), None)
            else:
                work = seed_work(resume, seed)
                curve = work / "history.parquet"
                if curve.is_file():
                    history = pd.read_parquet(curve)
                else:
                    state = Resume(work / "state", hp["checkpoint_every"], resume.key)
                    history = train(seed, work / "checkpoints", state)
                    write_parquet(curve, history)
                shutil.copytree(
                    work / "checkpoints", seed_directory(tmp, seed), copy_function=link_or_copy
                )
            histories.append(history.assign(seed=seed))
    return pd.concat(histories, ignore_index=True)


def seed_work(resume: Resume, seed: int) -> Path:
    """One seed's resume directory; a state saved under another key is removed first (logged)."""
    marker = resume.directory / "key"
    if marker.is_file() and marker.read_text() != resume.key:
        log(f"ignoring the resume state in {resume.directory}: saved for other params; removed")
        resume.clear()
    if not marker.is_file():
        with atomic_path(marker) as tmp:
            tmp.write_text(resume.key)
    return resume.directory / f"seed{seed}"


def seed_directory(checkpoints: str | Path, seed: int) -> Path:
    """Where `finetune_seeds` puts the checkpoints of one seed: `<checkpoints>/seed<seed>`."""
    return Path(checkpoints) / f"seed{seed}"


def saved_steps(directory: str | Path) -> dict[int, Path]:
    """The checkpoints `finetune` wrote, {step: directory}, in step order."""
    found = {int(p.name.split("-", 1)[1]): p for p in Path(directory).glob("step-*") if p.is_dir()}
    if not found:
        raise ValueError(f"{directory}: no step-<n> checkpoints")
    return dict(sorted(found.items()))


def load(directory: str | Path) -> PreTrainedModel:
    """A saved classifier checkpoint (safetensors only), in eval mode."""
    return checkpoints.load(directory, model_class=AutoModelForSequenceClassification)
