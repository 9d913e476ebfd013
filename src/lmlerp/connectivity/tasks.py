"""The jobs of the mode-connectivity stage: seed classifiers, lines between them, curves, tables.

Torch and transformers (≈6 s to import) are imported only inside the tasks that need them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lmlerp import jobs
from lmlerp.connectivity import tables
from lmlerp.io import atomic

PathLike = str | os.PathLike


def finetune_classifiers(
    *,
    base: PathLike,
    movie: PathLike,
    checkpoints_dir: PathLike,
    loss_table: PathLike,
    data_record: PathLike,
    hp: Mapping[str, Any],
    lora: Mapping[str, Any] | None,
    data: Mapping[str, Any],
    seeds: Sequence[int],
    device: str,
    dtype: str,
    threads: int,
    resume: PathLike | None = None,
    code: str = "",
) -> None:
    """Fine-tune a classifier from `base` once per seed (fully, or with `lora` adapters); record
    the examples per split and the lines dropped reading the task's data in `data_record`.
    With a `resume` directory, a state is saved at every checkpoint and resumed from if its key
    (params, inputs, `code`) matches (`classifier.finetune_seeds`)."""
    from lmlerp.connectivity import classifier, examples
    from lmlerp.io import tokenizer as tok
    from lmlerp.train import resume as resumable

    device = jobs.setup(threads, device)
    state = resumable.for_job(
        resume, hp["checkpoint_every"],
        {"hp": hp, "lora": lora, "data": data, "seeds": list(seeds), "device": device,
         "dtype": dtype, "threads": threads},
        [base, movie], code,
    )  # fmt: skip
    train, _, record = examples.task_data(data, pd.read_parquet(movie))
    history = classifier.finetune_seeds(
        base, tok.load(base), train, hp, seeds, examples.num_labels(data["task"]),
        checkpoints_dir, lora, device, dtype, state,
    )  # fmt: skip
    atomic.write_parquet(loss_table, history)
    atomic.write_json(data_record, record)
    if state is not None:
        state.clear()


def connect(
    *,
    checkpoints_dir: PathLike,
    movie: PathLike,
    curves_table: PathLike,
    barriers_table: PathLike,
    data: Mapping[str, Any],
    seeds: Sequence[int],
    max_length: int,
    device: str,
    dtype: str,
    threads: int,
) -> None:
    """Loss, accuracy (and F1 on QQP) along the line between every pair of seeds at every
    checkpoint, on this job's claimed device in `dtype` (bf16 autocast), batched; their
    barriers."""
    from lmlerp.connectivity import classifier, curves, examples
    from lmlerp.io import tokenizer as tok

    device = jobs.setup(threads, device)
    seed_dirs = {seed: classifier.seed_directory(checkpoints_dir, seed) for seed in seeds}
    bpe = tok.load(next(iter(classifier.saved_steps(seed_dirs[seeds[0]]).values())))
    _, held_out = examples.task_examples(data, pd.read_parquet(movie), data["eval_examples"])
    batches = examples.held_out_batches(bpe, held_out, max_length, data["eval_batch_size"])
    ts = curves.grid(data["path_points"])
    positive = examples.positive_class(data["task"])
    evaluate = functools.partial(classifier.evaluate, batches=batches, positive=positive)
    curve = curves.seed_pair_lines(seed_dirs, ts, evaluate, device, dtype)
    atomic.write_parquet(curves_table, curve)
    atomic.write_parquet(barriers_table, tables.barriers(curve))


def bezier(
    *,
    inputs: Mapping[str, Any],
    curves_table: PathLike,
    history_table: PathLike,
    phi_dir: PathLike,
    pair: str,
    seeds: Sequence[int],
    settings: Mapping[str, Any],
    data: Mapping[str, Any],
    max_length: int,
    device: str,
    dtype: str,
    threads: int,
) -> None:
    """Train a quadratic Bezier curve between a pair's endpoints; loss along it and the line, on
    this job's claimed device in `dtype` (bf16 autocast).

    `inputs`: movie, and theta1 and theta2 (pair theta_pos_neg) or the seeds' `checkpoints`.
    """
    from lmlerp.connectivity import classifier, curves
    from lmlerp.io import checkpoints

    device = jobs.setup(threads, device)
    if "checkpoints" in inputs:
        endpoints = [classifier.seed_directory(inputs["checkpoints"], seed) for seed in seeds]
    else:
        endpoints = [inputs["theta1"], inputs["theta2"]]
    model1, model2, batches, evaluate, bpe = curves.pair_setup(
        pair, endpoints, pd.read_parquet(inputs["movie"]), data, settings["batch_size"],
        max_length, settings["seed"], device,
    )  # fmt: skip
    ts = curves.grid(data["path_points"])
    table, history, phi = curves.bezier_vs_line(
        model1, model2, batches, evaluate, ts, settings["steps"], settings["lr"], settings["seed"],
        dtype,
    )  # fmt: skip
    atomic.write_parquet(curves_table, table.assign(pair=pair))
    atomic.write_parquet(history_table, history)
    checkpoints.save(phi.cpu(), bpe, phi_dir)


def tabulate(
    *,
    barriers: Sequence[PathLike],
    data: Sequence[PathLike],
    outputs: Mapping[str, PathLike],
    models: Sequence[str],
    quantities: Sequence[str],
) -> None:
    """Barriers of every model in one table (`outputs['barriers']`); metric × model tables per
    quantity (`outputs[<quantity>]`); the data records of every model (`outputs['data']`)."""
    frames = [
        pd.read_parquet(path).assign(model=name)
        for name, path in zip(models, barriers, strict=True)
    ]
    table = pd.concat(frames, ignore_index=True)
    atomic.write_parquet(outputs["barriers"], table)
    for quantity in quantities:
        atomic.write_tsv(outputs[quantity], tables.report_table(table, quantity))
    records = {name: atomic.read_json(path) for name, path in zip(models, data, strict=True)}
    atomic.write_json(outputs["data"], records)
