"""The jobs of the training stage, file in, file out: pretrain, fine-tune, select.

Each function is what one Snakemake `script:` calls with the job's named inputs, outputs and
params; paths come from the rules, never from here.


Torch and transformers (≈6 s to import) are imported only inside the tasks that need them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lmlerp import jobs
from lmlerp.io import atomic
from lmlerp.train import selection

PathLike = str | os.PathLike


def pretrain_model(
    *,
    train_tokens: PathLike,
    val_tokens: PathLike,
    tokenizer: PathLike,
    model_dir: PathLike,
    metrics_json: PathLike,
    loss_table: PathLike | None,
    name: str,
    arch: Mapping[str, int],
    hp: Mapping[str, Any],
    seed: int,
    device: str,
    dtype: str,
    threads: int,
    resume: PathLike | None = None,
    code: str = "",
) -> None:
    """Pretrain model `name` (θ0 or θC4) on its corpus's token files; write model and metrics,
    and the loss curve where `loss_table` is given. With a `resume` directory, a state is saved
    there every `hp['checkpoint_every']` steps, resumed from if its key (params, inputs, `code`)
    matches, and removed once the outputs are written."""
    from lmlerp.io import checkpoints, tokens
    from lmlerp.io import tokenizer as tok
    from lmlerp.train import pretrain
    from lmlerp.train import resume as resumable

    device = jobs.setup(threads, device)  # this job's own GPU when several run at once
    state = resumable.for_job(
        resume, hp.get("checkpoint_every", resumable.DEFAULT_EVERY),
        {"name": name, "arch": arch, "hp": hp, "seed": seed, "device": device, "dtype": dtype,
         "threads": threads},
        [train_tokens, val_tokens, tokenizer], code,
    )  # fmt: skip
    bpe = tok.load(tokenizer)
    model, history, metrics = pretrain.run(
        tokens.read(train_tokens), tokens.read(val_tokens), name, bpe, arch, hp, seed, device,
        dtype, state,
    )  # fmt: skip
    if loss_table is not None:
        atomic.write_parquet(loss_table, history)
    atomic.write_json(metrics_json, metrics)
    checkpoints.save(model, bpe, model_dir)
    if state is not None:
        state.clear()


def finetune_candidate(
    *,
    theta0: PathLike,
    movie: PathLike,
    model_dir: PathLike,
    loss_table: PathLike,
    metrics_json: PathLike,
    sentiment: str,
    candidate: Mapping[str, Any],
    hp: Mapping[str, Any],
    device: str,
    dtype: str,
    threads: int,
    resume: PathLike | None = None,
    code: str = "",
) -> None:
    """Fine-tune θ0 on `sentiment` sentences with one grid candidate (lr, batch, steps); with a
    `resume` directory, resumably (as `pretrain_model`)."""
    from lmlerp.io import checkpoints
    from lmlerp.io import tokenizer as tok
    from lmlerp.train import finetune
    from lmlerp.train import resume as resumable

    device = jobs.setup(threads, device)
    state = resumable.for_job(
        resume, hp.get("checkpoint_every", resumable.DEFAULT_EVERY),
        {"sentiment": sentiment, "candidate": candidate, "hp": hp, "device": device,
         "dtype": dtype, "threads": threads},
        [theta0, movie], code,
    )  # fmt: skip
    bpe = tok.load(theta0)
    model, history, metrics = finetune.run(
        checkpoints.load(theta0), bpe, pd.read_parquet(movie), sentiment, candidate, hp, device,
        dtype, state,
    )  # fmt: skip
    atomic.write_parquet(loss_table, history)
    atomic.write_json(metrics_json, {**candidate, **metrics})
    checkpoints.save(model, bpe, model_dir)
    if state is not None:
        state.clear()


def finetune_reference(
    *,
    reference: PathLike,
    movie: PathLike,
    selection_table: PathLike,
    model_dir: PathLike,
    loss_table: PathLike,
    metrics_json: PathLike,
    candidates: Mapping[str, Mapping[str, Any]],
    hp: Mapping[str, Any],
    device: str,
    dtype: str,
    threads: int,
    resume: PathLike | None = None,
    code: str = "",
) -> None:
    """Fine-tune the reference (paper: DistilGPT-2) on positive sentences with θ+'s recipe, the
    candidate that θ+'s `selection_table` selected: pair (a) of the paper's Fig 9, DistilGPT-2
    vs DistilGPT-2 fine-tuned on positive text, at the size of pair (b)."""
    chosen = selection.selected(pd.read_csv(selection_table, sep="\t"))
    finetune_candidate(
        theta0=reference, movie=movie, model_dir=model_dir, loss_table=loss_table,
        metrics_json=metrics_json, sentiment="positive", candidate=candidates[chosen], hp=hp,
        device=device, dtype=dtype, threads=threads, resume=resume, code=code,
    )  # fmt: skip


def select_candidate(
    *,
    metrics: Sequence[PathLike],
    models: Sequence[PathLike],
    table: PathLike,
    model_dir: PathLike,
    candidates: Sequence[str],
) -> None:
    """Tabulate every candidate and publish the one of lowest validation perplexity as θ±."""
    results = [
        {"candidate": name, **json.loads(Path(path).read_text())}
        for name, path in zip(candidates, metrics, strict=True)
    ]
    ranked = selection.select(results)
    best = list(candidates).index(ranked.candidate[ranked.selected].item())
    atomic.write_tsv(table, ranked)
    atomic.link_copy(models[best], model_dir)
