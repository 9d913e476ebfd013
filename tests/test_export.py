"""`python -m lmlerp export`: a path point as a plain Hugging Face model directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from workflow_helpers import TINY

from lmlerp.train.loss import sentence_nll


def export(work, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lmlerp", "export", "--config", str(TINY), *args]
    return subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)


def test_an_exported_point_reloads_with_plain_transformers_and_gives_its_tabled_nll(
    tiny_run, tmp_path
):
    out = tmp_path / "g3_point"
    result = export(tiny_run, "--family", "g3", "--alpha", "1", "--beta", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"model.safetensors", "generation_config.json", "README.md", "recipe.json"} <= {
        p.name for p in out.iterdir()
    }
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    movie = pd.read_parquet(tiny_run / "results" / "prepare" / "movie.parquet")
    test = movie[(movie.split == "test") & (movie.sentiment == "positive")].text.tolist()[:100]
    with torch.inference_mode():
        nll = sentence_nll(model, tokenizer, test, batch_size=32, device="cpu")
    table = pd.read_parquet(tiny_run / "results" / "tables" / "g3.parquet")
    row = table[(table.alpha == 1.0) & (table.beta == 1.0)].iloc[0]
    assert abs(nll - row.nll_pos) < 1e-4
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["top_p"] == 0.9 and generation["max_new_tokens"] == 12
    card = (out / "README.md").read_text()
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["coefficients"] == {"theta0": -1.0, "theta_pos": 1.0, "theta_neg": 1.0}
    assert all(entry["sha256"] in card for entry in recipe["bases"].values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "g7", "--alpha", "0.5"], "unknown family 'g7'; choose one of g1, g2, g3"),
        (["--family", "dexperts", "--alpha", "0.5"], "choose one of g1, g2, g3, decorrelated"),
        (["--family", "g1", "--alpha", "0.5", "--beta", "1"], "'g1' takes only alpha, not beta"),
        (["--family", "g3", "--alpha", "nan", "--beta", "1"], "needs a finite --alpha"),
        (["--family", "g3", "--alpha", "0.5"], "needs a finite --beta, got None"),
        (["--family", "g1", "--alpha", "0.5"], "no finished g1 point under results: run the"),
    ],
)
def test_a_bad_request_is_one_line_naming_the_choices_and_exit_status_2(tmp_path, args, message):
    result = export(tmp_path, *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_help_documents_the_export():
    result = subprocess.run(
        [sys.executable, "-m", "lmlerp", "export", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "save_pretrained" in result.stdout and "--beta" in result.stdout
