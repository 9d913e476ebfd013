"""Hub sources: local directories and a hub cache standing in for the Hugging Face hub."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lmlerp.data import bpe as bpe_training
from lmlerp.data import hub
from lmlerp.io import checkpoints
from lmlerp.train import pretrain

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ARCH = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 32}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny GPT-2 `save_pretrained` directory, as a hub repository holds it."""
    bpe = bpe_training.train(["a small corpus of words for a tiny tokenizer"] * 20, 300, 2)
    model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=0)
    out = tmp_path_factory.mktemp("repo") / "tiny-gpt2"
    checkpoints.save(model, bpe, out)
    return out


def hub_cache(home: Path, repo: str, files: dict[str, Path], repo_type: str = "model") -> Path:
    """Lay `files` out as huggingface_hub's cache does: blobs, a snapshot per commit, refs/main."""
    root = home / "hub" / f"{repo_type}s--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / COMMIT
    for relative, source in files.items():
        blob = root / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(source.read_bytes())
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    return root


def fetch_in_subprocess(
    home: Path, source: dict, out: Path, **kwargs
) -> subprocess.CompletedProcess:
    """`hub.fetch` in a fresh interpreter: HF_HOME and HF_HUB_OFFLINE read as users set them."""
    code = (
        "import json, sys; from lmlerp.data import hub; "
        "hub.fetch(json.loads(sys.argv[1]), sys.argv[2], **json.loads(sys.argv[3]))"
    )
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-c", code, json.dumps(source), str(out), json.dumps(kwargs)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def test_local_directory_source_is_published_with_a_manifest(model_dir, tmp_path):
    out = tmp_path / "resources" / "hub" / "theta0"
    manifest = hub.fetch({"path": str(model_dir)}, out)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert manifest["path"] == str(model_dir.resolve())
    assert json.loads((out / "fetch.json").read_text())["files"] == manifest["files"]
    loaded = checkpoints.load(out)
    original = checkpoints.load(model_dir)
    for (name, a), b in zip(
        loaded.state_dict().items(), original.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)


def test_hub_repository_is_read_from_the_hf_home_cache_offline(model_dir, tmp_path):
    files = {p.name: p for p in model_dir.iterdir()}
    hub_cache(tmp_path / "hf", "org/tiny-gpt2", files)
    out = tmp_path / "theta0"
    result = fetch_in_subprocess(
        tmp_path / "hf", {"repo": "org/tiny-gpt2", "revision": "main"}, out
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "fetch.json").read_text())
    assert manifest["commit"] == COMMIT and manifest["repo"] == "org/tiny-gpt2"
    assert not (out / "model.safetensors").is_symlink()  # published, not a link into the cache
    checkpoints.load(out)


def test_missing_repository_offline_names_it_and_says_how_to_get_it(tmp_path):
    source = {"repo": "org/absent", "revision": COMMIT}
    result = fetch_in_subprocess(tmp_path / "hf", source, tmp_path / "out")
    assert result.returncode != 0
    assert f"org/absent@{COMMIT}" in result.stderr and "offline mode" in result.stderr
    assert "hf download org/absent" in result.stderr
    assert not (tmp_path / "out").exists()


def test_repository_with_only_pickled_weights_is_refused(tmp_path):
    repo = tmp_path / "pickled"
    repo.mkdir()
    (repo / "config.json").write_text("{}")
    (repo / "pytorch_model.bin").write_bytes(b"not even opened")
    with pytest.raises(hub.HubError, match="no safetensors weights"):
        hub.fetch({"path": str(repo)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pickle_files_are_never_taken_even_next_to_safetensors(model_dir, tmp_path):
    repo = tmp_path / "mixed"
    repo.mkdir()
    for path in model_dir.iterdir():
        (repo / path.name).write_bytes(path.read_bytes())
    (repo / "pytorch_model.bin").write_bytes(b"payload")
    manifest = hub.fetch({"path": str(repo)}, tmp_path / "out")
    assert "pytorch_model.bin" not in manifest["files"]
    assert not (tmp_path / "out" / "pytorch_model.bin").exists()
    with pytest.raises(hub.HubError, match="pickled weight files cannot be requested"):
        hub.fetch({"path": str(repo)}, tmp_path / "out2", files=["*.bin"])


def test_dataset_file_patterns_keep_nested_paths(tmp_path):
    repo = tmp_path / "c4"
    for name in ("c4-train.00000-of-01024.json.gz", "c4-train.00001-of-01024.json.gz"):
        (repo / "en").mkdir(parents=True, exist_ok=True)
        (repo / "en" / name).write_bytes(b"x")
    (repo / "en" / "c4-validation.00000-of-00008.json.gz").write_bytes(b"x")
    files = ["en/c4-train.0000[0]-of-01024.json.gz"]
    manifest = hub.fetch({"path": str(repo)}, tmp_path / "out", repo_type="dataset", files=files)
    assert list(manifest["files"]) == ["en/c4-train.00000-of-01024.json.gz"]
    assert (tmp_path / "out" / "en" / "c4-train.00000-of-01024.json.gz").is_file()


def test_pinned_means_a_full_commit_or_a_local_path():
    assert hub.is_pinned({"repo": "gpt2", "revision": COMMIT})
    assert hub.is_pinned({"path": "/models/gpt2"})
    assert not hub.is_pinned({"repo": "gpt2", "revision": "main"})
    assert not hub.is_pinned({"repo": "gpt2", "revision": COMMIT[:12]})


def test_prompt_file_is_copied_and_its_digest_checked(tmp_path):
    source = tmp_path / "neutral.jsonl"
    source.write_text('{"prompt": {"text": "Hello"}}\n')
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert hub.fetch_file(str(source), tmp_path / "a.jsonl", digest, False) == digest
    assert (tmp_path / "a.jsonl").read_text() == source.read_text()
    with pytest.raises(hub.HubError, match="does not match the config's"):
        hub.fetch_file(str(source), tmp_path / "b.jsonl", "0" * 64, False)
    assert not (tmp_path / "b.jsonl").exists()
    with pytest.raises(hub.HubError, match="offline mode: cannot download"):
        hub.fetch_file("https://example.org/p.jsonl", tmp_path / "c.jsonl", None, True)


def test_safetensors_file_alone_is_not_a_model(tmp_path):
    repo = tmp_path / "weights-only"
    repo.mkdir()
    save_file({"w": torch.zeros(2)}, repo / "model.safetensors")
    with pytest.raises(hub.HubError, match=r"no config\.json"):
        hub.fetch({"path": str(repo)}, tmp_path / "out")


@pytest.mark.parametrize(
    ("source", "described"),
    [
        ({"repo": "openai-community/gpt2", "revision": "main"}, "openai-community/gpt2@main"),
        ({"path": "/models/theta0"}, "/models/theta0"),
        ({"gguf": "smollm2", "eos_token": "<|endoftext|>"}, "GGUF smollm2"),
    ],
)
def test_every_kind_of_source_is_described_for_messages_and_the_summary(source, described):
    assert hub.describe(source) == described
