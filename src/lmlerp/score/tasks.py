"""The jobs of the judges: the TF-IDF sentiment judge trained, the SmolLM2 judge LM converted."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lmlerp.io import atomic, gguf
from lmlerp.score import sentiment_judge

PathLike = str | os.PathLike


def train_judge(
    *, judge_data: PathLike, movie_table: PathLike, judge_dir: PathLike, metrics_json: PathLike,
    settings: Mapping[str, Any],
) -> None:  # fmt: skip
    """Train the 3-class judge; record its held-out accuracy on movie sentences."""
    table = pd.read_parquet(judge_data)
    train = table[table.split == "train"]
    judge = sentiment_judge.train(train.text.tolist(), train.label.tolist(), **settings)
    judge.save(judge_dir)
    movie = pd.read_parquet(movie_table)
    atomic.write_json(metrics_json, sentiment_judge.evaluate(judge, table, movie))


def convert_judge_lm(*, asset: PathLike, model_dir: PathLike) -> None:
    """Convert the SmolLM2 GGUF shipped on PyPI into a safetensors HF directory, once."""
    gguf.convert(Path(asset) / "model.gguf", Path(model_dir))
