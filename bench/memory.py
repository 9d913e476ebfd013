"""Benchmark of memory: peak RSS of corpus preparation, tokenisation and pretraining vs corpus size.

One run prints a table and writes one JSON (issue 15, docs/paper-scale.md "Memory"). The corpus is
the default's (config.yaml: gensim's Wikipedia + Lee articles, `data.corpus_splits`) repeated
`scale` times and written as C4 shards (`en/c4-train.*.json.gz`), so every scale runs the paper's
code path: `paper.write_c4_corpus` (rule prepare_corpus), `tasks.tokenize_corpus` (rule
tokenize_corpus) and `tasks.pretrain_model` (rule pretrain: the default's model and batch,
`--steps` steps). Each stage runs in a fresh Python process; its peak RSS is the kernel's
`ru_maxrss` of that process (os.wait4). The `in_memory` row is the pre-token-file data path,
kept only here for comparison: the whole train split tokenised into one int64 tensor.

    python bench/memory.py                       # scales 1 and 10, 20 steps
    python bench/memory.py --scales 1 10 30 --json bench/memory.json
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = ("prepare", "tokenize", "pretrain", "in_memory")


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def gensim_data() -> Path:
    """gensim's bundled test data (the default corpus's source), without importing gensim."""
    return Path(importlib.util.find_spec("gensim").submodule_search_locations[0]) / "test/test_data"


def write_shards(work: Path, scale: int, config: dict) -> tuple[dict, list[str]]:
    """The default corpus repeated `scale` times as C4 shards (one shard per copy); its size and
    the texts of one copy."""
    from lmlerp.data import corpus

    data = gensim_data()
    table = corpus.build_corpus(
        data / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        data / "lee_background.cor",
        config["data"]["corpus_splits"],
        config["data"]["val_fraction"],
        config["seed"],
    )
    shards = work / "c4" / "en"
    shards.mkdir(parents=True)
    for copy in range(scale):
        with gzip.open(shards / f"c4-train.{copy:05d}-of-01024.json.gz", "wt") as stream:
            for text in table.text:
                stream.write(json.dumps({"text": text, "url": "u"}) + "\n")
    size = {"documents": len(table) * scale, "characters": int(table.text.str.len().sum()) * scale}
    return size, table.text.tolist()


def train_tokenizer(work: Path, texts: list[str], config: dict) -> None:
    """The default's BPE settings (config `tokenizer`), trained on one copy of the corpus."""
    from lmlerp.data import bpe
    from lmlerp.io import tokenizer as tok

    tok.save(bpe.train(texts, **config["tokenizer"]), work / "tokenizer")


def stage(name: str, work: Path, steps: int) -> None:
    """Run one stage in this process (the child of `measure`)."""
    config = default_config()
    if name == "prepare":
        from lmlerp.data import paper

        paper.write_c4_corpus(
            work / "c4", work / "corpus.parquet", config["data"]["val_fraction"], config["seed"]
        )
    elif name == "tokenize":
        from lmlerp.data import tasks

        tasks.tokenize_corpus(
            corpus_table=work / "corpus.parquet", tokenizer=work / "tokenizer",
            train_tokens=work / "train.tokens", val_tokens=work / "val.tokens", name="theta_c4",
        )  # fmt: skip
    elif name == "pretrain":
        from lmlerp.train import tasks

        tasks.pretrain_model(
            train_tokens=work / "train.tokens", val_tokens=work / "val.tokens",
            tokenizer=work / "tokenizer", model_dir=work / "model",
            metrics_json=work / "metrics.json", loss_table=None, name="theta_c4",
            arch=config["model"], hp={**config["pretrain"], "steps": steps},
            seed=config["seed"], device="cpu", dtype="float32", threads=1,
        )  # fmt: skip
    elif name == "in_memory":
        import pandas as pd
        import torch

        from lmlerp.io import tokenizer as tok

        bpe = tok.load(work / "tokenizer")
        frame = pd.read_parquet(work / "corpus.parquet")
        ids: list[int] = []
        for text in frame[frame.split == "train"].text:
            ids += [*bpe.encode(text, add_special_tokens=False), bpe.eos_token_id]
        torch.tensor(ids, dtype=torch.long)


def measure(name: str, work: Path, steps: int) -> dict:
    """Peak RSS (MiB) and wall time of one stage in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--stage", name, "--work", str(work)]
    command += ["--steps", str(steps)]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"stage {name} failed with exit code {child.returncode}")
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "memory.json")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        return stage(args.stage, args.work, args.steps)
    from lmlerp.io import tokens

    config = default_config()
    rows = []
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix=f"memory-x{scale}-") as tmp:
            work = Path(tmp)
            size, texts = write_shards(work, scale, config)
            train_tokenizer(work, texts, config)
            results = {name: measure(name, work, args.steps) for name in STAGES}
            size["train_tokens"] = tokens.header(work / "train.tokens")["n_tokens"]
        for name, result in results.items():
            rows.append({"scale": scale, "stage": name, **size, **result})
            print(
                f"x{scale:<3} {name:<10} {size['characters'] / 1e6:8.1f} M chars "
                f"{size['train_tokens'] / 1e6:7.2f} M tokens "
                f"{result['peak_rss_mib']:8.0f} MiB {result['seconds']:7.1f} s",
                flush=True,
            )
    report = {"platform": platform.platform(), "steps": args.steps, "rows": rows}
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
