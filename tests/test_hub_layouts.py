"""Hub checkpoint layouts load wherever weights are read: base-model names without the
`transformer.` prefix, tied `lm_head`, shards with an index, legacy buffers, RoBERTa classifiers."""

import itertools
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_hub import hub_state, save_causal_lm, save_classifier, save_hub_layout
from transformers import AutoModelForSequenceClassification

from lmlerp.data import bpe as bpe_training
from lmlerp.io import checkpoints
from lmlerp.score import classifiers, judge_lm
from lmlerp.space import merge, paths, recipes, tasks
from lmlerp.space.norms import weight_difference_norms
from lmlerp.train import pretrain

SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
ADJECTIVES = ["wonderful", "boring", "charming", "dreadful", "moving", "slow"]
TEXTS = [f"{s} was {a} today." for s, a in itertools.product(SUBJECTS, ADJECTIVES)]
ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}
SHARD = 20_000  # bytes: this tiny GPT-2 (≈130 KB) in several shards


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


def gpt2(bpe, seed: int):
    return pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=seed)


@pytest.fixture
def hub_theta0(bpe, tmp_path):
    """θ0 as the hub stores gpt2-large: unprefixed names, no lm_head, masks, shards."""
    model = gpt2(bpe, seed=0)
    save_hub_layout(model, bpe, tmp_path / "theta0", max_shard_size=SHARD)
    return model, tmp_path / "theta0"


def shards(directory):
    return sorted(p.name for p in directory.glob("*.safetensors"))


def test_the_stand_in_is_in_the_hubs_layout(hub_theta0):
    _, directory = hub_theta0
    index = json.loads((directory / checkpoints.INDEX).read_text())["weight_map"]
    assert len(shards(directory)) > 1 and sorted(set(index.values())) == shards(directory)
    assert "wte.weight" in index and "h.0.attn.c_attn.weight" in index and "h.1.attn.bias" in index
    assert not any(name.startswith(("transformer.", "lm_head")) for name in index)


@pytest.mark.parametrize("shard", [None, SHARD])
def test_hub_layout_loads_with_the_lm_heads_names_and_tied_head(bpe, tmp_path, shard):
    model = gpt2(bpe, seed=0)
    save_hub_layout(model, bpe, tmp_path / "theta0", max_shard_size=shard)
    loaded = checkpoints.load(tmp_path / "theta0")
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    expected = model.state_dict()
    got = loaded.state_dict()
    assert list(got) == list(expected)
    assert all(torch.equal(got[name], expected[name]) for name in expected)


def test_a_missing_tensor_in_hub_layout_is_refused_with_its_name(hub_theta0):
    _, directory = hub_theta0
    index_path = directory / checkpoints.INDEX
    index = json.loads(index_path.read_text())
    shard = directory / index["weight_map"]["h.1.mlp.c_fc.weight"]
    state = load_file(shard)
    del state["h.1.mlp.c_fc.weight"]
    save_file(state, shard, metadata={"format": "pt"})
    del index["weight_map"]["h.1.mlp.c_fc.weight"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(checkpoints.CheckpointError, match=r"'transformer\.h\.1\.mlp\.c_fc\.weight"):
        checkpoints.load(directory)


def test_a_misshapen_tensor_in_hub_layout_is_refused_with_both_names(hub_theta0):
    _, directory = hub_theta0
    shard = (
        directory
        / json.loads((directory / checkpoints.INDEX).read_text())["weight_map"]["wpe.weight"]
    )
    state = load_file(shard)
    state["wpe.weight"] = torch.zeros(7, 32)
    save_file(state, shard, metadata={"format": "pt"})
    with pytest.raises(
        checkpoints.CheckpointError,
        match=r"'transformer\.wpe\.weight' \(stored as 'wpe\.weight'\) has shape \(7, 32\)",
    ):
        checkpoints.load(directory)


def test_an_unknown_tensor_is_refused_and_a_double_one_too(bpe, hub_theta0, tmp_path):
    model, directory = hub_theta0
    save_file({"h.0.attn.extra": torch.zeros(2)}, directory / "extra.safetensors")
    checkpoints.load(directory)  # not in the index: transformers would not read it either
    single = tmp_path / "single"
    save_hub_layout(model, bpe, single)
    state = load_file(single / "model.safetensors")
    save_file({**state, "h.0.attn.extra": torch.zeros(2)}, single / "model.safetensors")
    with pytest.raises(checkpoints.CheckpointError, match=r"unexpected tensor 'h\.0\.attn\.extra'"):
        checkpoints.check_tensors(single)
    both = {**state, "transformer.wte.weight": state["wte.weight"].clone()}
    save_file(both, single / "model.safetensors")
    with pytest.raises(
        checkpoints.CheckpointError,
        match=r"'transformer\.wte\.weight' is stored twice, as '.*wte\.weight' and '.*wte\.weight'",
    ):
        checkpoints.check_tensors(single)


def test_a_shard_the_index_names_must_exist(hub_theta0):
    _, directory = hub_theta0
    missing = shards(directory)[-1]
    (directory / missing).unlink()
    with pytest.raises(checkpoints.CheckpointError, match=rf"shard '{missing}' is missing"):
        checkpoints.load(directory)
    (directory / checkpoints.INDEX).write_text('{"weight_map": {"wte.weight": "../x.safetensors"}}')
    with pytest.raises(checkpoints.CheckpointError, match=r"'\.\./x\.safetensors' is not a file"):
        checkpoints.weight_files(directory)


def test_the_digest_of_a_sharded_base_covers_exactly_its_shards(hub_theta0):
    _, directory = hub_theta0
    before = recipes.weights_sha256(directory)
    (directory / "stray.safetensors").write_bytes(b"not in the index")
    assert recipes.weights_sha256(directory) == before
    first = directory / shards(directory)[0]
    first.write_bytes(first.read_bytes()[:-1] + b"\0")
    assert recipes.weights_sha256(directory) != before


def test_a_hub_theta0_combines_with_save_pretrained_thetas(bpe, hub_theta0, tmp_path):
    theta0, directory = hub_theta0
    dirs = {"theta0": directory}
    for name, seed in (("theta_pos", 1), ("theta_neg", 2)):
        dirs[name] = tmp_path / name
        checkpoints.save(gpt2(bpe, seed), bpe, dirs[name])
    loaded = {name: checkpoints.load(d) for name, d in dirs.items()}
    (point,) = paths.points("g3", {"alpha": [0.4], "beta": [-0.8]})
    recipe = recipes.Recipe.build(point, dirs)
    state, _ = recipes.materialize(recipe)  # verified and loaded from disk
    name = "transformer.h.0.attn.c_attn.weight"
    states = {n: m.state_dict() for n, m in loaded.items()}
    expected = sum(c * states[n][name] for n, c in point.coefficients.items())
    torch.testing.assert_close(state[name], expected)
    assert torch.equal(states["theta0"][name], theta0.state_dict()[name])
    rebuilt = merge.Interpolator(loaded).rebuild(point.coefficients)
    torch.testing.assert_close(rebuilt.state_dict()[name], expected)


def test_fig9_norms_read_a_hub_base(bpe, hub_theta0, tmp_path):
    theta0, directory = hub_theta0
    checkpoints.save(theta0, bpe, tmp_path / "same")
    c4 = gpt2(bpe, seed=3)
    checkpoints.save(c4, bpe, tmp_path / "c4")
    out = tmp_path / "norms.parquet"
    tasks.weight_norms(
        base=directory, tuned=tmp_path / "same", theta_c4=tmp_path / "c4", norms=out,
        base_name="θ0", tuned_name="θ0 again",
    )  # fmt: skip
    table = pd.read_parquet(out)
    same = table[table.pair.str.contains("again")]
    assert (same.value == 0).all() and "transformer.wte.weight" in set(same.tensor)
    assert "lm_head.weight" not in set(same.tensor)  # tied: counted once
    expected = weight_difference_norms(theta0.state_dict(), c4.state_dict())
    got = table[~table.pair.str.contains("again")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected)


def test_the_judge_lm_loads_from_hub_shards_and_refuses_a_missing_tensor(tmp_path):
    model, _ = save_causal_lm(tmp_path / "judge", max_shard_size=SHARD)
    assert (tmp_path / "judge" / checkpoints.INDEX).is_file()
    loaded, _ = judge_lm.load(tmp_path / "judge", dtype="float32")
    got = loaded.state_dict()
    assert all(torch.equal(got[name], value) for name, value in model.state_dict().items())
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    index = json.loads((tmp_path / "judge" / checkpoints.INDEX).read_text())["weight_map"]
    shard = tmp_path / "judge" / index["ln_f.bias"]
    save_file({k: v for k, v in load_file(shard).items() if k != "ln_f.bias"}, shard)
    with pytest.raises(checkpoints.CheckpointError, match=r"'transformer\.ln_f\.bias' is missing"):
        judge_lm.load(tmp_path / "judge", dtype="float32")


def test_a_hub_roberta_classifier_loads_and_a_missing_head_is_refused(tmp_path):
    model, _ = save_classifier(tmp_path / "sentiment", 3, bias=[0.1, 0.2, 0.7])
    stored = load_file(tmp_path / "sentiment" / "model.safetensors")
    assert "roberta.embeddings.position_ids" in stored and set(hub_state(model)) == set(stored)
    classifier = classifiers.Classifier.load(tmp_path / "sentiment", batch_size=2, dtype="float32")
    probabilities = classifier.probabilities(["good fun", "a very bad plot"])
    torch.testing.assert_close(
        torch.tensor(probabilities[0]), torch.tensor([0.1, 0.2, 0.7]).double().softmax(-1)
    )
    del stored["classifier.out_proj.weight"]
    save_file(stored, tmp_path / "sentiment" / "model.safetensors")
    with pytest.raises(checkpoints.CheckpointError, match=r"'classifier\.out_proj\.weight'"):
        classifiers.Classifier.load(tmp_path / "sentiment", batch_size=2, dtype="float32")
    with pytest.raises(checkpoints.CheckpointError, match=r"'classifier\.out_proj\.weight'"):
        checkpoints.check_tensors(tmp_path / "sentiment", AutoModelForSequenceClassification)
