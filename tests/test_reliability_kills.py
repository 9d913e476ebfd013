"""Kills: the tiny config SIGKILLed ≥ 10 times at seeded random moments in every stage, resumed
each time, ends with exactly the tables, models and summary of the uninterrupted run.

After every kill a dry run must plan each killed job again (Snakemake's incomplete-file
tracking) and every output file on disk must read back whole (atomic writes). The record of the
kills goes to `kills.json` in the run directory, and to $LMLERP_KILL_REPORT when that is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from kill_harness import markdown, report, run_with_kills, temporaries
from workflow_helpers import prepare_workdir

pytestmark = pytest.mark.workflow
SEED = 20221122


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, tiny_run) -> tuple[Path, dict]:
    """A second run of the tiny config, killed and resumed until it completes.

    It starts with the local run's converted judge LM (hard links): the one rule whose job is a
    fixed conversion of a downloaded file, and the longest early job, which the kills would
    otherwise hit again and again. Every other stage is computed anew.
    $LMLERP_KILLED_RUN may name a directory where `python tests/kill_harness.py DIR` finished.
    """
    if os.environ.get("LMLERP_KILLED_RUN"):
        work = Path(os.environ["LMLERP_KILLED_RUN"])
        return work, json.loads((work / "kills.json").read_text())
    work = prepare_workdir(tmp_path_factory.mktemp("killed"))
    for shared in ("resources/smollm2", "results/models/judge_lm"):
        (work / shared).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", tiny_run / shared, work / shared], check=True)
    began = time.monotonic()
    kills, attempts = run_with_kills(work, SEED)
    record = report(kills, attempts, time.monotonic() - began)
    text = json.dumps(record, indent=2)
    (work / "kills.json").write_text(text)
    if os.environ.get("LMLERP_KILL_REPORT"):
        Path(os.environ["LMLERP_KILL_REPORT"]).write_text(text)
    print(markdown(record))
    return work, record


def relative(root: Path, pattern: str) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / "results").rglob(pattern))


def test_kills_hit_every_stage(killed_run):
    _, record = killed_run
    assert record["kills"] >= 10
    rules = set(record["rules_killed"])
    assert {"pretrain", "finetune", "evaluate", "finetune_classifier", "connect"} <= rules, rules
    assert rules & {"prepare_movie", "prepare_corpus", "prepare_judge_data", "train_tokenizer"}
    assert rules & {"aggregate", "weight_norms", "plot", "summarize"}, rules


def test_every_killed_job_was_planned_again_or_left_whole_outputs(killed_run):
    _, record = killed_run
    for kill in record["per_kill"]:
        assert sorted(kill["planned_again"] + kill["left_whole"]) == sorted(
            job["rule"] for job in kill["running"]
        )


def test_killed_run_leaves_no_temporary_behind(killed_run):
    work, _ = killed_run
    assert temporaries(work) == []


def test_killed_run_gives_the_same_tables_as_the_uninterrupted_one(tiny_run, killed_run):
    work, _ = killed_run
    tables = relative(tiny_run, "*.parquet")
    assert relative(work, "*.parquet") == tables
    assert any(str(t).startswith("results/tables/") for t in tables)
    for table in tables:
        pd.testing.assert_frame_equal(
            pd.read_parquet(work / table), pd.read_parquet(tiny_run / table), check_exact=True
        )


def test_killed_run_gives_bitwise_identical_models(tiny_run, killed_run):
    work, _ = killed_run
    weights = relative(tiny_run, "*.safetensors")
    assert relative(work, "*.safetensors") == weights
    assert len(weights) >= 5
    for path in weights:
        assert (work / path).read_bytes() == (tiny_run / path).read_bytes(), path


def test_killed_run_gives_the_same_summary_and_recipes(tiny_run, killed_run):
    work, _ = killed_run
    for path in relative(tiny_run, "*.json"):
        ours, theirs = (json.loads((root / path).read_text()) for root in (work, tiny_run))
        if path.name == "summary.json":
            ours.pop("timings_s"), theirs.pop("timings_s")
        assert ours == theirs, path
