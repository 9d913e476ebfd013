"""The point cache: keys that change exactly when a result can, atomic entries, and a workflow
that grows, resumes and re-runs without re-evaluating finished points."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, TINY, copy_run, snakemake, snakemake_command

from lmlerp.evaluate import cache as point_cache
from lmlerp.io import digests

SAMPLING = {
    "seed": 7,
    "samples_per_prompt": 2,
    "max_new_tokens": 12,
    "top_p": 0.9,
    "batch_size": 64,
}
SETTINGS = {
    "points_per_job": 8, "materialize": "weights", "perplexity_samples": 1, "nll_sentences": 100,
    "judge_lm_dtype": "float32", "batch_size": 32, "words": {"positive": ["good"]},
}  # fmt: skip
SCORERS = {"sentiment": "tfidf", "grammar": "harper", "judge_lm": "smollm2", "batch_size": 32}
SHA = {"theta0": "a" * 64, "theta_pos": "b" * 64, "theta_neg": "c" * 64}


def key(tmp_path, family="g3", point=None, filter_p=0.9, **changes) -> str:
    """The key of one point with the settings above, `changes` replacing whole sections."""
    (tmp_path / "tok").mkdir(exist_ok=True)
    (tmp_path / "tok" / "tokenizer.json").write_text(changes.pop("tokenizer", "{}"))
    shared = point_cache.shared_parts(
        sampling=changes.get("sampling", SAMPLING), settings=changes.get("settings", SETTINGS),
        scorer_settings=changes.get("scorers", SCORERS), scorer_dirs={},
        tokenizer_dir=tmp_path / "tok", prompts=pd.DataFrame({"prompt_id": [0], "text": ["A"]}),
        test_sentences=[["good"], ["bad"]], device="cpu", dtype="float32",
        code=changes.get("code", "c0de"),
    )  # fmt: skip
    point = point or {"label": "a0_b1", "alpha": 0.0, "beta": 1.0}
    parts = point_cache.point_parts(family, point, changes.get("sha", SHA), filter_p)
    return point_cache.point_key({**shared, "point": parts})


@pytest.mark.parametrize(
    "change",
    [
        {"sampling": SAMPLING | {"top_p": 0.8}},
        {"sampling": SAMPLING | {"seed": 8}},
        {"settings": SETTINGS | {"nll_sentences": 50}},
        {"scorers": SCORERS | {"sentiment": "transformers"}},
        {"sha": SHA | {"theta_neg": "d" * 64}},
        {"code": "edited"},
        {"tokenizer": '{"other": 1}'},
        {"point": {"label": "a0.5_b1", "alpha": 0.5, "beta": 1.0}},
    ],
)
def test_a_setting_that_changes_results_changes_the_key(tmp_path, change):
    assert key(tmp_path, **change) != key(tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        {"sampling": SAMPLING | {"batch_size": 3}},
        {"settings": SETTINGS | {"batch_size": 5, "points_per_job": 1, "materialize": "recipe"}},
        {"scorers": SCORERS | {"batch_size": 2}},
    ],
)
def test_batch_sizes_and_scheduling_do_not_change_the_key(tmp_path, change):
    assert key(tmp_path, **change) == key(tmp_path)


def test_dexperts_keys_follow_filter_p_and_alpha(tmp_path):
    point = {"label": "a1", "alpha": 1.0}
    base = key(tmp_path, "dexperts", point)
    assert key(tmp_path, "dexperts", point, filter_p=None) != base
    assert key(tmp_path, "dexperts", {"label": "a2", "alpha": 2.0}) != base


def test_g3_on_the_g2_line_shares_g2s_entry(tmp_path):
    """Same bases, same coefficients: the same model, whatever the family's name."""
    g3 = key(tmp_path, "g3", {"label": "a0.5_b-0.5", "alpha": 0.5, "beta": -0.5})
    assert g3 == key(tmp_path, "g2", {"label": "a0.5", "alpha": 0.5})


def test_put_then_get_returns_the_point_as_stored(tmp_path):
    store = point_cache.PointCache(tmp_path / "cache")
    samples = pd.DataFrame({"prompt_id": [0, 1], "kind": ["fixed", "neutral"], "x": [0.5, 1.5]})
    store.put("ab" * 32, samples, {"nll_pos": 2.5, "perplexity": float("nan")}, {"why": 1})
    got_samples, metrics = store.get("ab" * 32)
    pd.testing.assert_frame_equal(got_samples, samples)
    assert metrics["nll_pos"] == 2.5 and pd.isna(metrics["perplexity"])
    assert store.get("cd" * 32) is None and len(store) == 1
    assert not list((tmp_path / "cache").rglob(".*.tmp"))  # no temporary left behind


def test_concurrent_writers_of_the_same_key_leave_one_complete_entry(tmp_path):
    store = point_cache.PointCache(tmp_path / "cache")
    frame = pd.DataFrame({"a": range(1000)})
    writers = [
        threading.Thread(target=store.put, args=("ef" * 32, frame, {"m": 1.0})) for _ in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert store.get("ef" * 32)[1] == {"m": 1.0}
    entry = store.path("ef" * 32)
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # no temporaries
    assert sorted(p.name for p in entry.iterdir()) == ["metrics.json", "samples.parquet"]


def test_a_killed_writers_temporary_goes_when_its_key_is_stored_again(tmp_path):
    store = point_cache.PointCache(tmp_path / "cache")
    key = "0a" * 32
    stale = store.path(key).parent / f".{key}.killed00.tmp"
    live = store.path(key).parent / f".{key}.writing0.tmp"
    for path in (stale, live):
        path.mkdir(parents=True)
    old = time.time() - 2 * point_cache.STALE_S
    os.utime(stale, (old, old))
    store.put(key, pd.DataFrame({"a": [1]}), {"m": 1.0})
    assert not stale.exists() and live.exists()  # a live writer's temporary is left alone


def test_digests_ignore_key_order_and_see_content(tmp_path):
    assert digests.digest({"a": 1, "b": [0.1]}) == digests.digest({"b": [0.1], "a": 1})
    assert digests.digest({"a": 0.1}) != digests.digest({"a": 0.1000000001})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    before = digests.files_digest([tmp_path / "d"])
    (tmp_path / "d" / "f").write_text("y")
    assert digests.files_digest([tmp_path / "d"]) != before
    frame = pd.DataFrame({"a": [1, 2]})
    assert digests.frame_digest(frame) == digests.frame_digest(frame.set_index(frame.a))
    assert digests.frame_digest(frame) != digests.frame_digest(frame.astype(float))


def test_make_clean_cache_empties_the_cache_only(tmp_path):
    (tmp_path / "results" / "cache" / "points" / "ab").mkdir(parents=True)
    (tmp_path / "results" / "tables").mkdir(parents=True)
    subprocess.run(
        ["make", "-s", "-f", REPO / "Makefile", "-C", tmp_path, "clean-cache"], check=True
    )
    assert not (tmp_path / "results" / "cache").exists()
    assert (tmp_path / "results" / "tables").exists()


# --- the workflow: grow, resume after a kill, re-run after setting changes -------------------

G3_TABLE = "results/tables/g3.parquet"
COUNTS = re.compile(r"evaluate (\w+): (\d+) points, (\d+) from the cache, (\d+) to evaluate")


def config_with(path: Path, **sections) -> Path:
    """The tiny config with `sections` ({section: {key: value}}) merged in, written to `path`."""
    config = yaml.safe_load(TINY.read_text())
    for section, values in sections.items():
        config[section] = {**config[section], **values}
    path.write_text(yaml.safe_dump(config))
    return path


GROWN = {"paths": {"g3": {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]}}}  # 2 × 2 → 3 × 2


def evaluated(work: Path, family: str = "g3") -> tuple[int, int, int]:
    """(points, from the cache, to evaluate) of the family's last evaluate job, from its log."""
    logs = sorted((work / "logs" / "evaluate" / family).glob("*.log"))
    found = [COUNTS.search(log.read_text()) for log in logs]
    assert all(found), [log.read_text()[-2000:] for log in logs]
    return tuple(sum(int(m.group(k)) for m in found) for k in (2, 3, 4))


def run_ok(work: Path, *args: str, configfile: Path) -> None:
    """Run Snakemake, its evaluate logs of g3 cleared first (`evaluated` sums what is there)."""
    shutil.rmtree(work / "logs" / "evaluate" / "g3", ignore_errors=True)
    result = snakemake(work, *args, configfile=configfile)
    assert result.returncode == 0, result.stderr[-5000:]


def chunk_samples(work: Path) -> pd.DataFrame:
    frames = [
        pd.read_parquet(p) for p in sorted((work / "results/evaluate/g3").glob("*/samples.parquet"))
    ]
    return pd.concat(frames).sort_values(["point", "prompt_id", "sample_id"], ignore_index=True)


@pytest.fixture(scope="module")
def grown(tiny_run, tmp_path_factory) -> Path:
    """The tiny run with g3 grown by one α row, re-run up to g3's table."""
    work = copy_run(tiny_run, tmp_path_factory.mktemp("grown") / "run")
    configfile = config_with(work / "grown.yaml", **GROWN)
    started = time.monotonic()
    run_ok(work, G3_TABLE, configfile=configfile)
    (work / "wall_s").write_text(f"{time.monotonic() - started:.1f}")
    return work


def test_growing_the_grid_evaluates_exactly_the_new_points(tiny_run, grown):
    assert evaluated(grown) == (6, 4, 2)
    table = pd.read_parquet(grown / G3_TABLE)  # a row per point and prompt kind
    assert table.point.nunique() == 6 and sorted(set(table.alpha)) == [0.0, 0.5, 1.0]
    before = pd.read_parquet(tiny_run / G3_TABLE).set_index(["point", "kind"])
    after = table.set_index(["point", "kind"]).loc[before.index]
    pd.testing.assert_frame_equal(after, before)  # the cached points' numbers, intervals too


def test_a_killed_chunk_keeps_its_finished_points_and_the_rerun_evaluates_the_rest(grown, tmp_path):
    """From an empty cache: SIGKILL the chunk job after ≥ 2 points, resume, compare with the
    grown run (4 points from the cache, 2 fresh): every number the same, so a cached point is
    what a from-scratch run computes."""
    work = copy_run(grown, tmp_path / "run")
    configfile = work / "grown.yaml"
    shutil.rmtree(work / "results" / "cache")
    store = point_cache.PointCache(work / "results" / "cache" / "points")
    command = snakemake_command(work, G3_TABLE, "--forcerun", "evaluate", configfile=configfile)
    job = subprocess.Popen(
        command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while len(store) < 2 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    kept = len(store)
    assert 2 <= kept < 6, f"{kept} points finished before the kill"
    run_ok(work, "--unlock", configfile=configfile)
    run_ok(work, G3_TABLE, "--rerun-incomplete", configfile=configfile)
    assert evaluated(work) == (6, kept, 6 - kept)
    pd.testing.assert_frame_equal(
        pd.read_parquet(work / G3_TABLE), pd.read_parquet(grown / G3_TABLE)
    )
    pd.testing.assert_frame_equal(chunk_samples(work), chunk_samples(grown))


def test_a_batch_size_change_re_evaluates_nothing_a_top_p_change_everything(grown, tmp_path):
    work = copy_run(grown, tmp_path / "run")
    batches = config_with(
        work / "batches.yaml",
        **GROWN,
        generation={"batch_size": 5},
        evaluation={"batch_size": 7, "points_per_job": 4},
    )
    run_ok(work, G3_TABLE, configfile=batches)
    assert evaluated(work) == (6, 6, 0)  # points_per_job 4: two chunk jobs, all from the cache
    pd.testing.assert_frame_equal(
        pd.read_parquet(work / G3_TABLE), pd.read_parquet(grown / G3_TABLE)
    )
    top_p = config_with(work / "top_p.yaml", **GROWN, generation={"top_p": 0.8})
    run_ok(work, G3_TABLE, configfile=top_p)
    assert evaluated(work) == (6, 0, 6)
