"""Clean number spellings, the fine-tuning grid, candidate selection, the summary numbers."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from lmlerp.report import summary as summary_mod
from lmlerp.space import labels
from lmlerp.train import selection

# --- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.0003, "0.0003"),
        (2.0, "2"),
        (2, "2"),
        (0.1 + 0.2, "0.3"),
        (-4 / 2.5, "-1.6"),
        (-0.0, "0"),
        (1e-05, "1e-05"),
        (3.0e-4, "0.0003"),
        (1 / 3, "0.333333333333"),
        (-2.5, "-2.5"),
        (120, "120"),
    ],
)
def test_number_is_a_clean_lossless_spelling(x, text):
    assert labels.number(x) == text


@pytest.mark.parametrize("flag", [True, False])
def test_number_refuses_booleans(flag):
    with pytest.raises(TypeError, match="boolean"):
        labels.number(flag)


def test_candidate_name():
    assert labels.candidate(3.0e-4, 16, 150) == "lr0.0003_bs16_steps150"
    assert labels.candidate(0.1 + 0.2, 8, 1) == "lr0.3_bs8_steps1"


def test_candidates_are_the_grid_in_config_order():
    grid = labels.candidates([1.0e-3, 3.0e-4], [16, 8], [100])
    assert list(grid) == [
        "lr0.001_bs16_steps100",
        "lr0.001_bs8_steps100",
        "lr0.0003_bs16_steps100",
        "lr0.0003_bs8_steps100",
    ]
    assert grid["lr0.0003_bs8_steps100"] == {"lr": 3.0e-4, "batch_size": 8, "steps": 100}


def test_candidates_refuse_names_that_collide():
    with pytest.raises(ValueError, match=r"duplicate fine-tuning candidate 'lr0\.3_bs8_steps5'"):
        labels.candidates([0.3, 0.1 + 0.2], [8], [5])


# --- selection ----------------------------------------------------------------------------


def row(name: str, val_ppl: float) -> dict:
    return {"candidate": name, "val_ppl": val_ppl, "lr": 1e-3}


def test_select_picks_the_lowest_val_ppl():
    table = selection.select([row("c", 12.0), row("a", 15.0), row("b", 11.5)])
    assert table.candidate.tolist() == ["a", "b", "c"]
    assert table.selected.tolist() == [False, True, False]
    assert table.selected.dtype == bool


def test_select_breaks_ties_by_the_first_candidate_name():
    table = selection.select([row("lr0.003", 9.0), row("lr0.001", 9.0), row("lr0.01", 10.0)])
    assert table.selected.sum() == 1
    assert table.candidate[table.selected].item() == "lr0.001"


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_select_refuses_a_non_finite_val_ppl(bad):
    with pytest.raises(ValueError, match=r"candidate 'diverged' has a non-finite val_ppl"):
        selection.select([row("ok", 10.0), row("diverged", bad)])


def test_selected_reads_the_winner_back_from_the_written_table(tmp_path):
    """finetune_reference takes θ+'s recipe from candidates.tsv as select_finetune wrote it."""
    from lmlerp.io import atomic

    path = tmp_path / "candidates.tsv"
    atomic.write_tsv(path, selection.select([row("c", 12.0), row("a", 15.0), row("b", 11.5)]))
    assert selection.selected(pd.read_csv(path, sep="\t")) == "b"


def test_selected_refuses_a_table_without_one_winner():
    table = selection.select([row("a", 1.0), row("b", 2.0)]).assign(selected=False)
    with pytest.raises(ValueError, match=r"exactly one candidate, not \[\]"):
        selection.selected(table)


def test_select_refuses_an_empty_list():
    with pytest.raises(ValueError, match="no fine-tuning candidates"):
        selection.select([])


# --- summary ------------------------------------------------------------------------------


def write_benchmark(path, seconds: list[float]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["s\th:m:s\tmax_rss"] + [f"{s}\t0:00:{int(s):02d}\t100.5" for s in seconds]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


PATTERNS = {
    "finetune": "benchmarks/finetune/{sentiment}/{candidate}.tsv",
    "pretrain": "benchmarks/pretrain/{model}.tsv",
    "train_judge": "benchmarks/train_judge/judge.tsv",
}


def test_stage_timings_sums_the_last_run_per_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_benchmark(Path("benchmarks/finetune/pos/lr0.001.tsv"), [3.0, 4.25])  # last row
    write_benchmark(Path("benchmarks/finetune/neg/lr0.001.tsv"), [1.5])
    write_benchmark(Path("benchmarks/pretrain/theta0.tsv"), [10.126])
    timings = summary_mod.stage_timings(PATTERNS, {})  # train_judge: no file, not counted
    assert timings == {"finetune": 5.75, "pretrain": 10.13, "total_job_seconds": 15.88}
    assert list(timings)[-1] == "total_job_seconds"


def test_stage_timings_skip_jobs_the_config_no_longer_has(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_benchmark(Path("benchmarks/finetune/pos/lr0.001.tsv"), [2.0])
    write_benchmark(Path("benchmarks/finetune/pos/lr0.5.tsv"), [100.0])  # a candidate removed
    write_benchmark(Path("benchmarks/pretrain/theta0.tsv"), [7.0])
    write_benchmark(Path("benchmarks/pretrain/theta_c4.tsv"), [3.0])  # the inline constraint
    constraints = {"candidate": r"lr0\.001", "sentiment": "pos|neg"}
    patterns = {**PATTERNS, "pretrain": "benchmarks/pretrain/{model,theta0}.tsv"}
    assert summary_mod.stage_timings(patterns, constraints) == {
        "finetune": 2.0,
        "pretrain": 7.0,
        "total_job_seconds": 9.0,
    }


def test_stage_timings_of_no_files_is_zero(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert summary_mod.stage_timings(PATTERNS, {}) == {"total_job_seconds": 0.0}


def write_selections(directory: Path) -> list[str]:
    """Candidate tables of θ+ then θ− as select_finetune writes them (θ+: the 2nd, θ−: the 1st)."""
    columns = ["candidate", "lr", "batch_size", "steps", "val_ppl", "nll_pos_val", "nll_neg_val"]
    pos = pd.DataFrame(
        [
            ["lr0.001_bs16_steps100", 0.001, 16, 100, 30.0, 3.1, 3.9, False],
            ["lr0.003_bs16_steps100", 0.003, 16, 100, 25.0, 3.0, 4.0, True],
        ],
        columns=[*columns, "selected"],
    )
    neg = pos.assign(selected=[True, False], nll_neg_val=[2.5, 2.7])
    pos.to_csv(directory / "pos.tsv", sep="\t", index=False)
    neg.to_csv(directory / "neg.tsv", sep="\t", index=False)
    return [str(directory / "pos.tsv"), str(directory / "neg.tsv")]


def test_models_gathers_pretrained_and_selected_candidates(tmp_path):
    metrics = {"theta0": {"val_ppl": 40.5, "params": 1900000}, "theta_c4": {"val_ppl": 41.0}}
    for name, content in metrics.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    out = summary_mod.models(
        [str(tmp_path / "theta0.json"), str(tmp_path / "theta_c4.json")],
        write_selections(tmp_path),
        ["theta0", "theta_c4"],
    )
    assert list(out) == ["theta0", "theta_c4", "theta_pos", "theta_neg"]
    assert out["theta0"] == metrics["theta0"]
    assert out["theta_pos"] == {
        "candidate": "lr0.003_bs16_steps100",
        "lr": 0.003,
        "batch_size": 16,
        "steps": 100,
        "val_ppl": 25.0,
        "nll_pos_val": 3.0,
        "nll_neg_val": 4.0,
    }
    assert out["theta_neg"]["candidate"] == "lr0.001_bs16_steps100"
    assert out["theta_neg"]["nll_neg_val"] == 2.5
    json.dumps(out)  # plain Python values, ready for summary.json
    assert type(out["theta_pos"]["batch_size"]) is int
    assert type(out["theta_pos"]["lr"]) is float


def test_models_of_a_hub_theta0_are_the_fine_tuned_ones_only(tmp_path):
    out = summary_mod.models([], write_selections(tmp_path), [])
    assert list(out) == ["theta_pos", "theta_neg"]


def test_provenance_names_the_reference_only_with_the_decorrelated_pair():
    hub = {"theta0": {"repo": "HuggingFaceTB/SmolLM2-135M", "revision": "a" * 40}}
    assert list(summary_mod.provenance(hub)) == [
        "grammar", "judge_lm", "reference", "sentiment", "theta0",
    ]  # fmt: skip
    without = summary_mod.provenance(hub, decorrelated=False)
    assert list(without) == ["grammar", "judge_lm", "sentiment", "theta0"]
    assert "SmolLM2-135M" in without["theta0"]


def family_table(alphas) -> pd.DataFrame:
    """An aggregated family table (pooled rows only) with the columns summary.json reads."""
    rows = [
        {"alpha": a, "beta": math.nan, "kind": "all", "point": f"a{a}", "n_samples": 10,
         "n_empty": 0, "n_perplexity": 10, "positive_score": 0.5 + 0.1 * a,
         "perplexity": 20.0 + a, "grammar": 0.9, "distinct_2": 0.8, "nll_pos": 3.0, "nll_neg": 3.5}
        for a in alphas
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    for metric in ("positive_score", "perplexity"):  # intervals: the comparison reads them
        table[f"{metric}_lo"], table[f"{metric}_hi"] = table[metric] - 0.1, table[metric] + 0.1
    return table


def test_summarize_leaves_out_the_parts_the_config_has_not(tmp_path, monkeypatch):
    """No decorrelated family, no connectivity block, no reference source: absent, not NaN."""
    from lmlerp.report import tasks

    monkeypatch.chdir(tmp_path)
    families = ["g1", "g2", "g3", "dexperts"]
    inputs = {"pretrain_metrics": [], "selections": write_selections(tmp_path)}
    inputs["tables"], inputs["trends"] = [], []
    for family in families:
        family_table([0.0, 0.5, 1.0]).to_parquet(tmp_path / f"{family}.parquet")
        (tmp_path / f"{family}_trends.json").write_text(json.dumps({"monotone": True}))
        inputs["tables"].append(str(tmp_path / f"{family}.parquet"))
        inputs["trends"].append(str(tmp_path / f"{family}_trends.json"))
    tasks.summarize(
        inputs=inputs, summary_json=tmp_path / "summary.json", pretrained=[], families=families,
        benchmarks={}, constraints={}, hub_models={"theta0": {"path": "/smollm2"}},
    )  # fmt: skip
    result = json.loads((tmp_path / "summary.json").read_text())
    assert "decorrelated" not in result and "connectivity" not in result
    assert list(result["models"]) == ["theta_pos", "theta_neg"]
    assert "reference" not in result["sources"]
    assert result["g1"]["alpha"] == [0.0, 0.5, 1.0]
    assert result["g3"]["positive_score"] == [0.5, 0.55, 0.6]
