"""The cost of a config's DAG: jobs per rule, work per stage, GPU-hours and disk written.

Work is counted from the config the way the rules do it (points per family, prompts × samples ×
tokens, the fine-tuning grid, checkpoints kept); jobs per rule come from the real plan
(`snakemake --dry-run`'s job stats). Times divide that work by a throughput: a measured one where
a benchmark JSON gives it (`measured`), otherwise an estimate, named as such with its source:

- decode: tokens/s of one sampling stream (DESIGN §6: HF `generate`, static cache, GPT-2 Large
  bf16 on an H100 ≈ 36K tokens/s);
- scoring: tokens/s of a forward pass (DESIGN §6: GPT-2 XL bf16 ≈ 84K tokens/s), scaled by
  parameter count for the other scored models;
- training: 6·N FLOPs per token (Kaplan et al. 2020) at `mfu` of the GPU's bf16 peak.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from transformers import AutoModel, BertConfig, GPT2Config, GPT2LMHeadModel, RobertaConfig

from lmlerp.data.standins import GPT2_SHAPES, ROBERTA_BASE
from lmlerp.space.families import COORDINATES as MERGE_COORDINATES

H100_BF16_FLOPS = 989e12  # dense bf16 peak of an H100 SXM
ESTIMATES = {
    "decode_tokens_per_s": (36e3, "estimate: DESIGN §6, HF generate static cache, H100"),
    "xl_tokens_per_s": (84e3, "estimate: DESIGN §6, GPT-2 XL bf16 forward, H100"),
    "mfu": (0.4, "estimate: 40% of the H100's bf16 peak for training"),
}
SST5_TOKENS = 23  # mean GPT-2 tokens of an SST-5 sentence (≈19 words; an estimate)
PROMPT_TOKENS = 10  # prompts are cut at ≤10 tokens
FP32 = 4  # bytes per saved parameter: checkpoints are fp32 safetensors
SIZES = {  # parameter counts of the paper's models, from their configs (no weights)
    **{name: GPT2Config(**shape) for name, shape in GPT2_SHAPES.items()},
    "roberta-base": RobertaConfig(**ROBERTA_BASE),
    "roberta-large": RobertaConfig(
        **{
            **ROBERTA_BASE,
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "intermediate_size": 4096,
        }
    ),
    "bert-base-uncased": BertConfig(),
}


def parameters(name: str) -> int:
    """Parameter count of a named architecture (tied tensors once), built on the meta device."""
    config = SIZES[name]
    with torch.device("meta"):
        model = (
            GPT2LMHeadModel(config)
            if isinstance(config, GPT2Config)
            else AutoModel.from_config(config)
        )
    return sum(p.numel() for p in model.parameters())


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of `snakemake --dry-run` as {rule: count} (without the total)."""
    block = dry_run_output.split("Job stats:", 1)[1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", block, flags=re.MULTILINE))
    counts.pop("total", None)
    return {rule: int(n) for rule, n in counts.items()}


def points(config: Mapping[str, Any]) -> dict[str, int]:
    """Evaluation points per family, as the evaluate rule chunks them (merge families: the
    product of their coordinate lists; a mergekit YAML: its sweep's values, else 1)."""
    paths = config["paths"]
    counts = {
        "g1": len(paths["g1"]["alpha"]),
        "g2": len(paths["g2"]["alpha"]),
        "g3": len(paths["g3"]["alpha"]) * len(paths["g3"]["beta"]),
        "decorrelated": len(paths["decorrelated"]["alpha"]),
    }
    for name, entry in paths.get("merges", {}).items():
        swept = [entry[c] for c in MERGE_COORDINATES.get(entry["method"], ())]
        if "sweep" in entry:
            swept.append(entry["sweep"]["values"])
        counts[name] = math.prod(len(values) for values in swept)
    return {**counts, "dexperts": len(config["dexperts"]["alpha"])}


def workload(config: Mapping[str, Any], encoders: Mapping[str, str]) -> list[dict[str, Any]]:
    """Work of each stage of the paper config: tokens, FLOPs, bytes written.

    `encoders` maps each connectivity model name to its architecture in SIZES.
    """
    n_large, n_xl, n_small = (parameters(k) for k in ("gpt2-large", "gpt2-xl", "distilgpt2"))
    n_roberta = parameters("roberta-base")
    prompts = sum(config["prompts"][k] for k in ("neutral", "positive", "negative"))
    prompts += len(config["prompts"]["fixed"])
    gen, ev = config["generation"], config["evaluation"]
    per_family = points(config)
    weight_points = sum(v for k, v in per_family.items() if k != "dexperts")
    sampled = prompts * gen["samples_per_prompt"] * gen["max_new_tokens"]  # per model, upper bound
    large_models = weight_points - per_family["decorrelated"] + 3 * per_family["dexperts"]
    # decode time scales with the model (memory-bound): decorrelated points are DistilGPT-2s
    decode = (large_models + per_family["decorrelated"] * n_small / n_large) * sampled
    total_points = weight_points + per_family["dexperts"]
    sample_tokens = gen["max_new_tokens"] + PROMPT_TOKENS
    scored = total_points * prompts * ev["perplexity_samples"] * sample_tokens
    nll = weight_points * 2 * ev["nll_sentences"] * SST5_TOKENS
    judged = total_points * prompts * gen["samples_per_prompt"] * sample_tokens
    ft = config["finetune"]
    grid_sequences = sum(s * b for s in ft["steps"] for b in ft["batch_size"]) * len(ft["lr"])
    pre = config["pretrain"]
    pretrain_tokens = pre["steps"] * pre["batch_size"] * pre["block_size"]
    lmc = config["connectivity"]
    lf = lmc["finetune"]
    every = lf["checkpoint_every"]
    checkpoints_kept = lf["steps"] // every + 1 + (lf["steps"] % every > 0)  # step 0 and the last
    sizes = {name: parameters(arch) for name, arch in encoders.items()}
    seeds = len(lmc["seeds"])
    pairs = seeds * (seeds - 1) // 2
    # every encoder's seeds, plus the LoRA classifiers of the curves' model (counted at full cost)
    trained = {**sizes, "lora": sizes[lmc["curves"]["model"]]}
    classifier_tokens = {
        name: seeds * lf["steps"] * lf["batch_size"] * lf["max_length"] for name in trained
    }
    tokens = lf["max_length"]
    connect_tokens = {  # upper bound: every example padded to max_length
        name: pairs * checkpoints_kept * lmc["path_points"] * lmc["eval_examples"] * tokens
        for name in trained
    }
    curve = lmc["curves"]
    curve_size = sizes[curve["model"]]
    curve_tokens = curve["steps"] * curve["batch_size"] * lf["max_length"]
    return [
        {"stage": "pretrain GPT-C4", "rules": ["pretrain"], "tokens": pretrain_tokens,
         "train_flops": 6 * n_small * pretrain_tokens, "bytes": n_small * FP32},
        {"stage": "fine-tuning grid (θ+, θ−)", "rules": ["finetune"],
         "tokens": 2 * grid_sequences * SST5_TOKENS,
         "train_flops": 6 * n_large * 2 * grid_sequences * SST5_TOKENS,
         "bytes": 2 * len(ft["lr"]) * len(ft["batch_size"]) * len(ft["steps"]) * n_large * FP32},
        {"stage": "sampling (every point)", "rules": ["evaluate"], "tokens": decode,
         "decode_tokens": decode, "bytes": 0},
        {"stage": "GPT-2 XL perplexity", "rules": ["evaluate"], "tokens": scored,
         "score_tokens_xl": scored, "bytes": 0},
        {"stage": "test NLL and RoBERTa judges", "rules": ["evaluate"], "tokens": nll + 2 * judged,
         "score_tokens_xl": nll * n_large / n_xl + 2 * judged * n_roberta / n_xl, "bytes": 0},
        {"stage": "connectivity classifiers", "rules": ["finetune_classifier"],
         "tokens": sum(classifier_tokens.values()),
         "train_flops": sum(6 * trained[m] * t for m, t in classifier_tokens.items()),
         "bytes": sum(seeds * checkpoints_kept * sizes[m] * FP32 for m in sizes)},
        {"stage": "connectivity lines", "rules": ["connect"],
         "tokens": sum(connect_tokens.values()),
         "score_tokens_xl": sum(connect_tokens[m] * trained[m] / n_xl for m in trained),
         "bytes": 0},
        {"stage": "Bezier curves", "rules": ["bezier"], "tokens": 3 * curve_tokens,
         "train_flops": 3 * 6 * curve_size * curve_tokens, "bytes": 3 * curve_size * FP32},
    ]  # fmt: skip


def gpu_hours(stages: list[dict[str, Any]], rates: Mapping[str, float]) -> list[dict[str, Any]]:
    """Each stage with its GPU-hours: training FLOPs at rates['mfu'] of the bf16 peak, decode
    and scoring tokens at rates['decode_tokens_per_s'] / rates['xl_tokens_per_s']."""
    priced = []
    for stage in stages:
        seconds = stage.get("train_flops", 0) / (rates["mfu"] * H100_BF16_FLOPS)
        seconds += stage.get("decode_tokens", 0) / rates["decode_tokens_per_s"]
        seconds += stage.get("score_tokens_xl", 0) / rates["xl_tokens_per_s"]
        priced.append({**stage, "gpu_hours": seconds / 3600})
    return priced
