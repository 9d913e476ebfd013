"""Sequence classifiers fine-tuned from a pretrained LM with several seeds (mode connectivity).

The linear-mode-connectivity study (Thaman report; Juneja et al. 2022,
https://arxiv.org/abs/2205.12411) fine-tunes one pretrained model into a classifier twice, with
different seeds, and asks whether the two minima are linearly connected at several points of
fine-tuning. Here the pretrained model is our own θ0 (a GPT-2 with a fresh classification head,
`GPT2ForSequenceClassification`, which reads the last non-padding token) and the task is the
sentence sentiment of the movie set (positive = 1, negative = 0): training sentences from the
movie `train` split, held-out ones from its `test` split, never the judge's. The paper scale uses
hub encoders (BERT, RoBERTa) on 10% of GLUE QQP / MNLI split 80:20 (`glue_examples`).

A seed decides the head's initialisation, the data order and the dropout masks. Full fine-tuning
trains every weight; LoRA (Hu et al. 2021, https://arxiv.org/abs/2106.09685, via `peft`) trains
low-rank adapters and the head, and every checkpoint is the adapter merged into the weights
(W + (α/r)·B·A), so both kinds are plain safetensors classifiers of the same shape.
"""

from __future__ import annotations

import copy
import csv
import functools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from lmlerp import checkpoints, training
from lmlerp.atomic import atomic_path

SENTIMENT_LABELS = {"negative": 0, "positive": 1}
# GLUE train.tsv columns: first text, second text, label column, label names in index order.
GLUE = {
    "glue_qqp": ("question1", "question2", "is_duplicate", ["0", "1"]),
    "glue_mnli": (
        "sentence1",
        "sentence2",
        "gold_label",
        ["entailment", "neutral", "contradiction"],
    ),
}
# Config attributes that hold dropout probabilities, per architecture family.
DROPOUT_KEYS = (
    "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout",  # GPT-2
    "hidden_dropout_prob", "attention_probs_dropout_prob",  # BERT, RoBERTa
)  # fmt: skip


def num_labels(task: str) -> int:
    """Number of classes of a task: 2 for movie sentiment and QQP, 3 for MNLI."""
    return len(GLUE[task][3]) if task in GLUE else len(SENTIMENT_LABELS)


def movie_examples(movie: pd.DataFrame, split: str, limit: int | None = None) -> pd.DataFrame:
    """Positive (1) and negative (0) movie sentences of one split: columns text, text_pair, label.

    `limit` keeps the first `limit` sentences of each class (file order), so that a held-out set
    stays balanced and fixed when the split grows.
    """
    parts = []
    for sentiment, label in SENTIMENT_LABELS.items():
        rows = movie[(movie.sentiment == sentiment) & (movie.split == split)]
        if rows.empty:
            raise ValueError(f"no {sentiment} movie sentences in the '{split}' split")
        parts.append(rows.head(limit).assign(label=label))
    frame = pd.concat(parts, ignore_index=True)
    return frame.assign(text_pair=None)[["text", "text_pair", "label"]]


def glue_examples(
    path: str | Path, task: str, fraction: float, eval_share: float, seed: int
) -> pd.DataFrame:
    """A seeded `fraction` of a GLUE train.tsv, split train / eval by `eval_share` (paper: 80:20).

    Returns columns text, text_pair, label, split. Rows with an unknown label are dropped.
    """
    first, second, column, names = GLUE[task]
    table = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, on_bad_lines="skip")
    missing = {first, second, column} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: a {task} train.tsv needs columns {sorted(missing)}")
    table = table[table[column].isin(names)].dropna(subset=[first, second])
    table = table.sample(frac=fraction, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    split = np.where(rng.random(len(table)) < eval_share, "eval", "train")
    return pd.DataFrame(
        {
            "text": table[first],
            "text_pair": table[second],
            "label": table[column].map(names.index).astype(int),
            "split": split,
        }
    )


def task_examples(
    data: Mapping[str, Any], movie: pd.DataFrame, eval_examples: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, held-out) examples of the configured task.

    `data` holds task, glue {path, fraction, eval_share} and the data seed (the same for both
    fine-tuning seeds: they must see the same split). Movie sentiment: the movie `train` split,
    and the first `eval_examples` per class of its `test` split. GLUE: a seeded share of
    train.tsv split 80:20 (paper), the held-out part cut to its first `eval_examples`.
    """
    if data["task"] == "movie_sentiment":
        return movie_examples(movie, "train"), movie_examples(movie, "test", eval_examples)
    glue = data["glue"]
    frame = glue_examples(
        Path(glue["path"]) / "train.tsv",
        data["task"],
        glue["fraction"],
        glue["eval_share"],
        data["seed"],
    )
    held_out = frame[frame.split == "eval"].head(eval_examples)
    return frame[frame.split == "train"], held_out


def encode(tokenizer, examples: pd.DataFrame, max_length: int) -> list[tuple[list[int], int]]:
    """(token ids, label) per example; pairs are encoded as the tokenizer joins them.

    No EOS is appended: GPT-2's classifier reads the last token that is not padding, and our
    padding token is EOS.
    """
    pairs = examples.text_pair.where(examples.text_pair.notna(), None).tolist()
    has_pairs = any(p is not None for p in pairs)
    encoded = tokenizer(
        examples.text.tolist(),
        pairs if has_pairs else None,
        truncation=True,
        max_length=max_length,
    )["input_ids"]
    return list(zip(encoded, examples.label.astype(int).tolist(), strict=True))


def _batch(items: Sequence[tuple[list[int], int]], pad_id: int, max_len: int) -> training.Batch:
    ids, mask, _ = training.pad([ids for ids, _ in items], pad_id, max_len)  # (B, T)
    return ids, mask, torch.tensor([label for _, label in items])  # labels (B,)


def train_batches(
    encoded: Sequence[tuple[list[int], int]], batch_size: int, pad_id: int, max_len: int, seed: int
) -> Iterator[training.Batch]:
    """Endless seeded epochs of shuffled, right-padded batches with class labels."""
    if len(encoded) < batch_size:
        raise ValueError(f"{len(encoded)} examples cannot fill one batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield _batch([encoded[i] for i in order[start : start + batch_size]], pad_id, max_len)


def held_out_batches(
    tokenizer, examples: pd.DataFrame, max_length: int, batch_size: int
) -> list[training.Batch]:
    """The held-out examples encoded and batched once, shortest first (less padding; the
    per-example mean does not depend on the order)."""
    encoded = sorted(encode(tokenizer, examples, max_length), key=lambda item: len(item[0]))
    return eval_batches(encoded, batch_size, tokenizer.pad_token_id, max_length)


def eval_batches(
    encoded: Sequence[tuple[list[int], int]], batch_size: int, pad_id: int, max_len: int
) -> list[training.Batch]:
    """The held-out set once, in order, as a list (reused at every point of a path)."""
    return [
        _batch(encoded[i : i + batch_size], pad_id, max_len)
        for i in range(0, len(encoded), batch_size)
    ]


@torch.no_grad()
def evaluate(model: PreTrainedModel, batches: Sequence[training.Batch]) -> dict[str, float]:
    """Mean cross-entropy per example (`loss`) and `accuracy` of a classifier, dropout off."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    for ids, mask, labels in batches:
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # (B, classes)
        total += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(-1) == labels).sum())
        count += len(labels)
    return {"loss": total / count, "accuracy": correct / count}


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
    """Steps after which a checkpoint is written: every k-th step, and always the last one."""
    return sorted({*range(every, steps + 1, every), steps})


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
) -> pd.DataFrame:
    """Fine-tune a classifier with AdamW and polynomial decay after warmup; save checkpoints.

    `hp` holds steps, checkpoint_every, batch_size, lr, warmup_steps, power, end_lr_ratio,
    weight_decay, betas, eps, max_length (paper: batch 32, lr 1e-5, weight decay 0.1,
    β (0.9, 0.98), ε 1e-6). With `lora`, adapters are trained (at `lora['lr']`) and each
    checkpoint is the merged model. Checkpoints go to `out_dir/step-<n>` (safetensors), the
    directory appearing only once all are written. Returns the loss curve.
    """
    max_len = hp["max_length"]
    encoded = encode(tokenizer, train_examples, max_len)
    batches = train_batches(encoded, hp["batch_size"], tokenizer.pad_token_id, max_len, seed)
    if lora is not None:
        model = with_lora(model, lora)
    opt = training.Optimisation(
        lr=lora["lr"] if lora is not None else hp["lr"],
        steps=hp["steps"],
        weight_decay=hp["weight_decay"],
        betas=tuple(hp["betas"]),
        eps=hp["eps"],
    )
    schedule = functools.partial(
        training.polynomial_schedule,
        warmup=hp["warmup_steps"],
        total=hp["steps"],
        power=hp["power"],
        end_ratio=hp["end_lr_ratio"],
    )
    keep = set(checkpoint_steps(hp["steps"], hp["checkpoint_every"]))
    with atomic_path(out_dir, directory=True) as tmp:

        def save(step: int, current: PreTrainedModel) -> None:
            if step in keep:
                checkpoints.save(merged(current), tokenizer, tmp / f"step-{step}")

        torch.manual_seed(seed)  # dropout masks
        history = training.train(
            model, batches, opt, schedule, device, dtype, desc=f"classifier seed {seed}",
            after_step=save,
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
) -> pd.DataFrame:
    """`finetune` a fresh classifier from `source` once per seed into `out_dir/seed<seed>`.

    The directory appears only when every seed is done. Returns the loss curves with a seed
    column.
    """
    histories = []
    with atomic_path(out_dir, directory=True) as tmp:
        for seed in seeds:
            model = load_pretrained(source, labels, hp["dropout"], seed)
            history = finetune(
                model, tokenizer, train_examples, hp, seed, tmp / f"seed{seed}", lora, device, dtype
            )
            histories.append(history.assign(seed=seed))
    return pd.concat(histories, ignore_index=True)


def saved_steps(directory: str | Path) -> dict[int, Path]:
    """The checkpoints `finetune` wrote, {step: directory}, in step order."""
    found = {int(p.name.split("-", 1)[1]): p for p in Path(directory).glob("step-*") if p.is_dir()}
    if not found:
        raise ValueError(f"{directory}: no step-<n> checkpoints")
    return dict(sorted(found.items()))


def load(directory: str | Path) -> PreTrainedModel:
    """A saved classifier checkpoint (safetensors only), in eval mode."""
    return checkpoints.load(directory, model_class=AutoModelForSequenceClassification)
