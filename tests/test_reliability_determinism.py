"""Determinism: a different generation seed gives different samples at the same point (the same
seed gives identical tables, models and summary: tests/test_reliability_kills.py compares a
second, repeatedly killed run of the tiny config with the uninterrupted one)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from workflow_helpers import TINY, copy_run, snakemake

pytestmark = pytest.mark.workflow


def test_other_generation_seed_gives_other_samples(tiny_run, tmp_path):
    work = copy_run(tiny_run, tmp_path / "copy")
    chunks = sorted((work / "results/evaluate").glob("*/*/samples.parquet"))
    chunk = min(chunks, key=lambda path: len(pd.read_parquet(path)))  # the cheapest to redo
    before = pd.read_parquet(chunk)
    config = yaml.safe_load(TINY.read_text())
    config["generation"]["seed"] += 1
    reseeded = tmp_path / "reseeded.yaml"
    reseeded.write_text(yaml.safe_dump(config))
    target = str(chunk.relative_to(work))
    plan = snakemake(work, target, "--dry-run", configfile=reseeded)
    assert "Params have changed" in plan.stdout + plan.stderr
    result = snakemake(work, target, configfile=reseeded)
    assert result.returncode == 0, result.stderr[-3000:]
    after = pd.read_parquet(chunk)
    keys = ["point", "prompt_id", "sample_id"]
    assert after[keys].equals(before[keys])  # the same points, prompts and sample slots
    changed = (after.continuation != before.continuation).mean()
    print(f"{chunk.relative_to(work)}: {changed:.1%} of {len(after)} continuations changed")
    assert changed > 0.5, changed
