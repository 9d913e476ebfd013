"""Checkpoints (safetensors only, finite weights) and atomic writers (nothing half-written)."""

import itertools
import json
import pickle

import pandas as pd
import pytest
import torch

from lmlerp.data import bpe as bpe_training
from lmlerp.io import atomic, checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.train import pretrain

SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
ADJECTIVES = ["wonderful", "boring", "charming", "dreadful", "moving", "slow"]
TEXTS = [f"{s} was {a} today." for s, a in itertools.product(SUBJECTS, ADJECTIVES)]
ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


@pytest.fixture
def model(bpe):
    return pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=0)


def siblings(path):
    """Hidden temporary names that atomic_path would leave next to `path`."""
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*"))


# --- checkpoints --------------------------------------------------------------------------


def test_gpt2_has_the_requested_shape_and_is_seeded(bpe, model):
    assert model.config.n_layer == 2 and model.config.n_embd == 32
    assert model.transformer.wte.weight.shape == (len(bpe), 32)
    assert model.config.eos_token_id == model.config.pad_token_id == bpe.eos_token_id
    again = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=0).state_dict()
    other = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=1).state_dict()
    name = "transformer.h.0.attn.c_attn.weight"
    assert torch.equal(model.state_dict()[name], again[name])
    assert not torch.equal(model.state_dict()[name], other[name])


def test_save_load_round_trip_in_safetensors(bpe, model, tmp_path):
    directory = tmp_path / "theta0"
    checkpoints.save(model, bpe, directory)
    names = {p.name for p in directory.iterdir()}
    assert any(n.endswith(".safetensors") for n in names)
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert "config.json" in names
    assert siblings(directory) == []
    loaded = checkpoints.load(directory)
    assert not loaded.training
    original = model.state_dict()
    restored = loaded.state_dict()
    assert original.keys() == restored.keys()
    for name, tensor in original.items():
        assert restored[name].dtype == torch.float32
        assert torch.equal(tensor, restored[name]), name
    assert tok.fingerprint(tok.load(directory)) == tok.fingerprint(bpe)


def test_save_over_an_existing_checkpoint_replaces_it(bpe, model, tmp_path):
    directory = tmp_path / "theta0"
    checkpoints.save(pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=9), bpe, directory)
    (directory / "stale.txt").write_text("from the first run")
    checkpoints.save(model, bpe, directory)
    assert not (directory / "stale.txt").exists()
    name = "transformer.wpe.weight"
    assert torch.equal(checkpoints.load(directory).state_dict()[name], model.state_dict()[name])


class _Payload:
    """Unpickling this object creates a file: proof that a loader unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_refuses_pickled_weights_without_unpickling_them(model, tmp_path):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe))).close()
    assert probe.exists()  # the payload works: unpickling it would leave a marker

    directory = tmp_path / "pickled"
    directory.mkdir()
    model.config.save_pretrained(directory)
    marker = tmp_path / "unpickled"
    (directory / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(checkpoints.CheckpointError, match=r"pytorch_model\.bin.*unpickling"):
        checkpoints.load(directory)
    assert not marker.exists()


def test_load_of_an_empty_directory_says_no_safetensors(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match=r"no safetensors weights$"):
        checkpoints.load(tmp_path)


def test_check_finite_names_the_first_bad_tensor():
    state = {
        "ok.weight": torch.ones(2, 2),
        "ids": torch.tensor([1, 2]),
        "bad.weight": torch.tensor([0.0, float("nan")]),
        "worse.weight": torch.tensor([float("inf")]),
    }
    with pytest.raises(checkpoints.CheckpointError, match=r"^theta_pos: tensor 'bad\.weight'"):
        checkpoints.check_finite(state, "theta_pos")
    del state["bad.weight"]
    with pytest.raises(checkpoints.CheckpointError, match=r"'worse\.weight' contains NaN or inf"):
        checkpoints.check_finite(state, "theta_pos")
    del state["worse.weight"]
    checkpoints.check_finite(state, "theta_pos")


def test_save_refuses_nan_weights_and_leaves_no_directory(bpe, model, tmp_path):
    with torch.no_grad():
        model.transformer.h[1].mlp.c_proj.weight[0, 0] = float("nan")
    directory = tmp_path / "broken"
    with pytest.raises(checkpoints.CheckpointError, match=r"transformer\.h\.1\.mlp\.c_proj"):
        checkpoints.save(model, bpe, directory)
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_a_checkpoint_with_nan_weights(bpe, model, tmp_path):
    checkpoints.save(model, bpe, tmp_path / "ok")
    from safetensors.torch import load_file, save_file

    weights = next((tmp_path / "ok").glob("*.safetensors"))
    state = load_file(weights)
    state["transformer.ln_f.bias"][0] = float("inf")
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(checkpoints.CheckpointError, match=r"transformer\.ln_f\.bias"):
        checkpoints.load(tmp_path / "ok")


# --- atomic -------------------------------------------------------------------------------


def test_atomic_file_is_renamed_into_place(tmp_path):
    final = tmp_path / "deep" / "out.txt"
    with atomic.atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".out.txt.")
        tmp.write_text("done")
        assert not final.exists()
    assert final.read_text() == "done"
    assert siblings(final) == []


def test_atomic_file_failure_leaves_the_old_content_and_no_temporary(tmp_path):
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="killed"), atomic.atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    final.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(final) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert final.read_text() == "old"
    assert siblings(final) == []


def test_atomic_directory_replaces_an_existing_one(tmp_path):
    final = tmp_path / "ckpt"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic.atomic_path(final, directory=True) as tmp:
        assert tmp.is_dir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert siblings(final) == []


def test_atomic_directory_failure_leaves_nothing(tmp_path):
    final = tmp_path / "ckpt"
    with pytest.raises(ValueError, match="boom"), atomic.atomic_path(final, directory=True) as tmp:
        (tmp / "part.txt").write_text("half")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_write_json_tsv_parquet_content(tmp_path):
    atomic.write_json(tmp_path / "m.json", {"θ": [1, 2.5], "ok": True})
    text = (tmp_path / "m.json").read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"θ": [1, 2.5], "ok": True}

    frame = pd.DataFrame({"candidate": ["a", "b"], "val_ppl": [1.5, 2.0], "n": [1, 2]})
    atomic.write_tsv(tmp_path / "t.tsv", frame)
    assert (tmp_path / "t.tsv").read_text().splitlines() == [
        "candidate\tval_ppl\tn",
        "a\t1.5\t1",
        "b\t2.0\t2",
    ]
    atomic.write_parquet(tmp_path / "t.parquet", frame)
    back = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "t.parquet", "t.tsv"]


def test_link_copy_reproduces_the_files_byte_for_byte(tmp_path):
    source = tmp_path / "theta_pos"
    source.mkdir()
    contents = {"model.safetensors": bytes(range(256)) * 4, "config.json": b'{"n_layer": 2}\n'}
    for name, content in contents.items():
        (source / name).write_bytes(content)
    target = tmp_path / "selected"
    target.mkdir()
    (target / "stale.json").write_text("{}")
    atomic.link_copy(source, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == contents
    assert {p.name: p.read_bytes() for p in source.iterdir()} == contents
    assert siblings(target) == []


def test_rewrite_removes_what_a_killed_writer_left_and_nothing_else(tmp_path):
    final = tmp_path / "table.parquet"
    killed_file = tmp_path / ".table.parquet.abcd1234.tmp"  # names atomic_path makes
    killed_dir = tmp_path / ".table.parquet.zz_9y8x7.tmp"
    killed_file.write_text("half")
    (killed_dir / "sub").mkdir(parents=True)
    others = [tmp_path / ".other.parquet.abcd1234.tmp", tmp_path / ".table.parquet.bak.tmp"]
    for path in others:
        path.write_text("not ours")
    atomic.write_json(final, {"ok": True})
    assert json.loads(final.read_text()) == {"ok": True}
    assert not killed_file.exists() and not killed_dir.exists()
    assert all(path.exists() for path in others)
