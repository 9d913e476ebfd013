"""Bad artifacts: a pickled checkpoint (whose payload would write a file), a truncated safetensors
file, another tokenizer, a tensor of another shape, NaN/inf weights, a recipe whose base changed,
an empty prompt file and a corrupted parquet table — each refused with an error that names the
culprit, nothing downstream written, the payload never run. Nothing loads with remote code.

Library entry points are exercised on tiny random GPT-2s; the `workflow` tests break one artifact
in a copy of the finished tiny run and re-run the rule that reads it.
"""

from __future__ import annotations

import ast
import itertools
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from safetensors.torch import load_file, save_file
from workflow_helpers import REPO, copy_run, snakemake

from lmlerp.data import bpe as bpe_training
from lmlerp.evaluate import chunk as eval_chunk
from lmlerp.io import atomic, checkpoints
from lmlerp.space import paths
from lmlerp.space import recipes as point_recipes
from lmlerp.train import pretrain

SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
ADJECTIVES = ["wonderful", "boring", "charming", "dreadful", "moving", "slow"]
TEXTS = [f"{s} was {a} today." for s, a in itertools.product(SUBJECTS, ADJECTIVES)]
ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}
G1 = [{"label": "a0.5", "alpha": 0.5}]


class Payload:
    """Unpickling this creates `marker` (what a malicious pytorch_model.bin could do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


@pytest.fixture
def bases(bpe, tmp_path) -> dict[str, Path]:
    """θ0, θ+ and θ− as safetensors checkpoint directories (different seeds)."""
    found = {}
    for seed, name in enumerate(["theta0", "theta_pos", "theta_neg"]):
        found[name] = tmp_path / name
        model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=seed)
        checkpoints.save(model, bpe, found[name])
    return found


def rewrite_weights(directory: Path, edit) -> None:
    """Apply `edit` to the state dict stored in `directory/model.safetensors`."""
    path = directory / "model.safetensors"
    state = load_file(path)
    edit(state)
    path.unlink()  # a new file: never write through a hard link into another run's copy
    save_file(state, path, metadata={"format": "pt"})


def refused_everywhere(
    bases: dict[str, Path], out: Path, match: str, *, sha: bool = True, headers: bool = True
):
    """The broken θ+ stops loading (the evaluation job loads its bases before it writes
    anything), building a recipe where the damage shows in the `headers` (`check_compatible`
    reads every base's), and materialization from a recipe whose digests were taken without
    that check; no output appears."""
    with pytest.raises(checkpoints.CheckpointError, match=match):
        checkpoints.load(bases["theta_pos"])
    if sha:
        point = paths.points("g1", {"alpha": [0.5]})[0]
        dirs = {k: str(v) for k, v in bases.items()}
        if headers:
            with pytest.raises(checkpoints.CheckpointError, match=match):
                point_recipes.Recipe.build(point, dirs)
        digests = {k: point_recipes.weights_sha256(v) for k, v in dirs.items()}
        recipe = point_recipes.Recipe.build(point, dirs, digests)
        with pytest.raises(checkpoints.CheckpointError, match=match):
            point_recipes.materialize(recipe, out / "model")
        assert not out.exists()


def test_pickled_checkpoint_is_refused_and_its_payload_never_runs(bases, tmp_path):
    probe = tmp_path / "probe"
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=pickle.dumps(Payload(probe)),
        check=True,
    )
    assert probe.exists()  # the payload is live: unpickling it anywhere writes a file

    marker = tmp_path / "unpickled"
    (bases["theta_pos"] / "model.safetensors").unlink()
    (bases["theta_pos"] / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(checkpoints.CheckpointError, match=r"no safetensors weights"):
        point_recipes.weights_sha256(bases["theta_pos"])
    refused_everywhere(bases, tmp_path / "recipes", r"pytorch_model\.bin.*unpickling", sha=False)
    from transformers import GPT2LMHeadModel

    with pytest.raises(OSError):  # what checkpoints.load passes: transformers refuses it too
        GPT2LMHeadModel.from_pretrained(bases["theta_pos"], use_safetensors=True)
    assert not marker.exists()


def test_truncated_safetensors_is_named(bases, tmp_path):
    path = bases["theta_pos"] / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refused_everywhere(bases, tmp_path / "recipes", r"theta_pos/model\.safetensors: unreadable")


def test_other_shape_of_one_tensor_is_named(bases, tmp_path):
    def shrink(state):
        state["transformer.h.1.mlp.c_fc.bias"] = state["transformer.h.1.mlp.c_fc.bias"][:10]

    rewrite_weights(bases["theta_pos"], shrink)
    match = r"'transformer\.h\.1\.mlp\.c_fc\.bias' has shape \(10,\).*implies \(128,\)"
    refused_everywhere(bases, tmp_path / "recipes", match)


def test_missing_tensor_is_named_not_reinitialised(bases, tmp_path):
    rewrite_weights(bases["theta_pos"], lambda state: state.pop("transformer.ln_f.weight"))
    refused_everywhere(bases, tmp_path / "recipes", r"'transformer\.ln_f\.weight' is missing")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_named(bases, tmp_path, bad):
    def poison(state):
        state["transformer.h.0.attn.c_proj.weight"][3, 5] = bad

    rewrite_weights(bases["theta_pos"], poison)
    match = r"tensor 'transformer\.h\.0\.attn\.c_proj\.weight' contains NaN or inf"
    refused_everywhere(bases, tmp_path / "recipes", match, headers=False)


def test_other_architecture_is_named_before_any_weight_is_read(bases, bpe, tmp_path):
    shutil.rmtree(bases["theta_neg"])
    narrow = pretrain.gpt2(len(bpe), bpe.eos_token_id, {**ARCH, "n_embd": 16}, seed=5)
    checkpoints.save(narrow, bpe, bases["theta_neg"])
    with pytest.raises(ValueError, match=r"'theta_neg'.*differ in 'n_embd': 32 vs 16"):
        point_recipes.check_compatible(bases)


def test_other_tokenizer_is_named(bases, tmp_path):
    other = bpe_training.train([t.upper() for t in TEXTS], vocab_size=300, min_frequency=2)
    other.save_pretrained(bases["theta_neg"])  # same vocabulary size, other tokens
    out = tmp_path / "recipes"
    with pytest.raises(ValueError, match=r"'theta_neg'.*differ in 'tokenizer'"):
        eval_chunk.write_recipes("g1", G1, {k: str(v) for k, v in bases.items()}, out)
    assert not out.exists()


def test_recipe_whose_base_changed_is_refused(bases, bpe, tmp_path):
    point = paths.points("g1", {"alpha": [0.5]})[0]
    recipe_path = tmp_path / "recipe.json"
    point_recipes.Recipe.build(point, {k: str(v) for k, v in bases.items()}).write(recipe_path)
    point_recipes.materialize(
        point_recipes.Recipe.read(recipe_path), tmp_path / "before"
    )  # fine as written
    retrained = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=9)
    checkpoints.save(retrained, bpe, bases["theta_pos"])
    out = tmp_path / "after"
    with pytest.raises(ValueError, match=r"base 'theta_pos' .* has changed since the recipe"):
        point_recipes.materialize(point_recipes.Recipe.read(recipe_path), out)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["zero bytes", "truncated", "not parquet", "no rows"])
def test_broken_table_is_named(tmp_path, kind):
    path = tmp_path / "prompts.parquet"
    atomic.write_parquet(path, pd.DataFrame({"prompt_id": ["p0"], "text": ["The movie was"]}))
    data = path.read_bytes()
    broken = {
        "zero bytes": b"",
        "truncated": data[: len(data) // 2],
        "not parquet": b"prompt_id,text\np0,The movie was\n",
    }
    if kind == "no rows":
        atomic.write_parquet(path, pd.read_parquet(path).iloc[:0])
        match = r"prompts\.parquet: 0 rows, at least 1 needed"
    else:
        path.write_bytes(broken[kind])
        match = r"prompts\.parquet: not a readable parquet table"
    with pytest.raises(ValueError, match=match):
        atomic.read_parquet(path, min_rows=1)


# --- nothing loads remote code or pickles ----------------------------------------------------

SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "scripts").glob("*.py")])


def calls(name: str):
    """(file, call) for every call of an attribute or function called `name` in our code."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    yield path, node


def keyword(call: ast.Call, name: str, tree: ast.AST | None = None) -> str | None:
    """The source text of keyword `name` of `call`, also through `**mapping` when `tree` holds
    the mapping's dict display (`source = {"gguf_file": ...}; f(**source)`); None if absent."""
    found = [k.value for k in call.keywords if k.arg == name]
    starred = [ast.unparse(k.value) for k in call.keywords if k.arg is None]
    for node in ast.walk(tree) if tree is not None and starred else ():
        if (
            isinstance(node, ast.Assign)
            and ast.unparse(node.targets[0]) in starred
            and isinstance(node.value, ast.Dict)
        ):
            pairs = zip(node.value.keys, node.value.values, strict=True)
            found += [v for k, v in pairs if k is not None and ast.unparse(k) == repr(name)]
    return ast.unparse(found[0]) if found else None


def test_nothing_passes_trust_remote_code_true():
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert ast.literal_eval(node.value) is False, path
    assert "trust_remote_code=True" not in "".join(p.read_text() for p in SOURCES)


def test_every_model_loader_asks_for_safetensors_or_gguf():
    loaders = [
        (path, call)
        for path, call in calls("from_pretrained")
        if "Tokenizer" not in ast.unparse(call.func) and "Config" not in ast.unparse(call.func)
    ]
    assert len(loaders) >= 3  # checkpoints.load, judge_lm.load, the GGUF conversion
    for path, call in loaders:
        safe = keyword(call, "use_safetensors") == "True"
        gguf = keyword(call, "gguf_file", ast.parse(path.read_text())) is not None  # no pickle
        assert safe or gguf, f"{path.name}: {ast.unparse(call)}"


def test_no_pickle_or_torch_load_anywhere():
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not {"pickle", "joblib", "dill", "cloudpickle"} & set(names), path
    for path, call in calls("load"):
        if ast.unparse(call.func) == "torch.load":
            assert keyword(call, "weights_only") == "True", path


# --- the same refusals inside the workflow ---------------------------------------------------


@pytest.fixture
def broken_copy(tiny_run, tmp_path) -> Path:
    return copy_run(tiny_run, tmp_path / "copy")


@pytest.mark.workflow
def test_workflow_refuses_a_pickled_base_without_running_it(broken_copy, tmp_path):
    theta_pos = broken_copy / "results/models/theta_pos"
    (theta_pos / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (theta_pos / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    target = "results/tables/weight_norms.parquet"
    result = snakemake(broken_copy, "--forcerun", "weight_norms", target)
    assert result.returncode != 0
    log = (broken_copy / "logs/weight_norms/weight_norms.log").read_text()
    assert "theta_pos: no safetensors weights (found pytorch_model.bin" in log
    assert not (broken_copy / target).exists() and not marker.exists()


@pytest.mark.workflow
def test_workflow_refuses_empty_prompts_and_a_corrupted_table(tiny_run, broken_copy):
    prompts = broken_copy / "results/prepare/prompts.parquet"
    empty = pd.read_parquet(prompts).iloc[:0]
    prompts.unlink()
    empty.to_parquet(prompts, index=False)
    chunk = sorted((broken_copy / "results/evaluate/decorrelated").iterdir())[0]
    points = chunk / "points.parquet"
    table = broken_copy / "results/tables/g2.parquet"
    g2 = sorted((broken_copy / "results/evaluate/g2").glob("*/points.parquet"))[0]
    data = g2.read_bytes()
    g2.unlink()
    g2.write_bytes(data[: len(data) // 2])
    for path in (prompts, g2):  # old times: only the two forced jobs run, nothing else is stale
        os.utime(path, ns=((tiny_run / path.relative_to(broken_copy)).stat().st_mtime_ns,) * 2)
    targets = [str(p.relative_to(broken_copy)) for p in (points, table)]
    result = snakemake(broken_copy, *targets, "--keep-going", "--forcerun", *targets)
    assert result.returncode != 0
    log = (broken_copy / f"logs/evaluate/decorrelated/{chunk.name}.log").read_text()
    assert "results/prepare/prompts.parquet: 0 rows, at least 1 needed" in log
    assert not points.exists() and not (chunk / "samples.parquet").exists()
    assert not (chunk / "recipes").exists()
    log = (broken_copy / "logs/aggregate/g2.log").read_text()
    assert f"{g2.relative_to(broken_copy)}: not a readable parquet table" in log
    assert not table.exists()
