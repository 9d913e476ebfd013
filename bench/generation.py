"""Benchmark of the evaluation engine: sampling and weight rebuild against Hugging Face and floors.

One run prints a table and writes one JSON (issue 7, DESIGN §6):

(a) CPU, the default's model (config.yaml `model`, vocabulary `tokenizer.vocab_size`; the trained
    results/models/theta0 and the prompts of results/prepare when they exist, else random
    weights and random prompts): our `sampler.decode` against Hugging Face `generate` on the
    same left-padded batches (top-p 0.9, 30 new tokens, many samples per prompt), tokens/s and
    their ratio; the in-place weight rebuild (`merge.Interpolator`) against its bandwidth floor.
(b) CUDA, when present: random-weight GPT-2 Large (GPT2Config only, no hub) in bf16, ≥100 prompts
    × 25 samples × 30 tokens, top-p 0.9: ours against `generate` with the dynamic and the static
    cache; the compute floor from a measured bf16 matmul rate; the rebuild against the device's
    copy bandwidth; GPT-2 XL scoring throughput; and the projected time of the paper's whole
    evaluation, its work counted from configs/paper.yaml as the Snakefile counts it (`paper_plan`).

Tokens are counted alike for both engines: new tokens up to and including a row's first EOS.
Times are the best and the median of `--repeats` runs, interleaved, after a warm-up run.

    python bench/generation.py                 # CPU, plus CUDA when present
    python bench/generation.py --device cuda   # the GPU part only
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import yaml
from transformers import GPT2Config, GPT2LMHeadModel

from lmlerp.data.standins import GPT2_SHAPES
from lmlerp.generate import combiners, nucleus, sampler
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.space import families, merge, mergekit_yaml, paths
from lmlerp.train import pretrain

ROOT = Path(__file__).resolve().parents[1]
GPT2_VOCAB = 50257
REBUILD_REPEATS = 30  # a rebuild takes milliseconds: many runs, the best kept
PAPER_CONFIG = ROOT / "configs/paper.yaml"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--out", type=Path, default=ROOT / "results/bench/generation.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument("--samples", type=int, default=25, help="samples per prompt")
    parser.add_argument("--top-k", type=int, default=nucleus.TOP_K, help="prefilter size")
    parser.add_argument("--model", type=Path, default=ROOT / "results/models/theta0")
    parser.add_argument("--prompts", type=Path, default=ROOT / "results/prepare/prompts.parquet")
    parser.add_argument("--cuda-prompts", type=int, default=100)
    parser.add_argument(
        "--ln-f-gain",
        type=float,
        default=8.0,
        help="scale of GPT-2 Large's final layer norm: random weights give near-uniform "
        "next-token distributions (nucleus ≈ 90%% of the vocabulary); a gain makes them peaked "
        "like a trained model's",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="run the CUDA section on the CPU with a tiny model: checks the code, measures nothing",
    )
    return parser.parse_args()


# --- timing ---------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    """(seconds, result) of one call, the device synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def race(contenders: dict, repeats: int, device: torch.device) -> dict:
    """Best and median seconds of each contender: one warm-up, then `repeats` interleaved runs."""
    results = {name: [] for name in contenders}
    outputs = {name: timed(fn, device)[1] for name, fn in contenders.items()}  # warm-up
    for _ in range(repeats):
        for name, fn in contenders.items():
            results[name].append(timed(fn, device)[0])
    return {
        name: {"best_s": min(ts), "median_s": statistics.median(ts), "runs_s": ts}
        for name, ts in results.items()
    } | {"_outputs": outputs}


def new_tokens(sequences: torch.Tensor, eos: int) -> int:
    """New tokens up to and including each row's first EOS (what a sampler has to produce)."""
    ended = (sequences == eos).int()
    after_first = ended.cumsum(-1) - ended > 0  # positions after the first EOS
    return int((~after_first).sum())


# --- the two engines on the same batches ----------------------------------------------------


def batches(prompt_ids: list[list[int]], samples: int, batch_size: int, eos: int, device):
    """Left-padded batches of every prompt repeated `samples` times, sorted by length."""
    jobs = sorted((ids for ids in prompt_ids for _ in range(samples)), key=len)
    out = []
    for start in range(0, len(jobs), batch_size):
        input_ids, mask = sampler.left_pad(jobs[start : start + batch_size], eos)
        out.append((input_ids.to(device), mask.to(device)))
    return out


def ours(model, work, *, eos, top_k, compile, seed=0):
    device = next(model.parameters()).device
    return [
        sampler.decode(
            [model],
            combiners.plain,
            input_ids,
            mask,
            max_new_tokens=30,
            top_p=0.9,
            uniforms=sampler.sequence_uniforms(
                seed, [(start, b) for b in range(len(input_ids))], 30
            ).to(device),
            eos_id=eos,
            top_k=top_k,
            compile=compile,
        )
        for start, (input_ids, mask) in enumerate(work)
    ]


def hf(model, work, *, eos, **options):
    return [
        model.generate(
            input_ids,
            attention_mask=mask,
            do_sample=True,
            top_p=0.9,
            top_k=0,  # HF's default top-k of 50 would change the distribution
            max_new_tokens=30,
            pad_token_id=eos,
            **options,
        )[:, input_ids.shape[1] :]
        for start, (input_ids, mask) in enumerate(work)
    ]


HF_VARIANTS = {"hf_generate": {}, "hf_generate_static": {"cache_implementation": "static"}}


def throughput(model, work, eos, repeats, device, top_k, compile, hf_variants) -> dict:
    """tokens/s of ours and of each HF `generate` variant on the same batches."""
    contenders = {"ours": lambda: ours(model, work, eos=eos, top_k=top_k, compile=compile)}
    for name, options in hf_variants.items():
        contenders[name] = lambda options=options: hf(model, work, eos=eos, **options)
    timings = race(contenders, repeats, device)
    outputs = timings.pop("_outputs")
    rows = {}
    for name, timing in timings.items():
        tokens = sum(new_tokens(t, eos) for t in outputs[name])
        rows[name] = timing | {
            "new_tokens": tokens,
            "tokens_per_s_best": tokens / timing["best_s"],
            "tokens_per_s_median": tokens / timing["median_s"],
        }
    for name in hf_variants:
        rows[name]["ours_speedup_best"] = (
            rows["ours"]["tokens_per_s_best"] / (rows[name]["tokens_per_s_best"])
        )
        rows[name]["ours_speedup_median"] = (
            rows["ours"]["tokens_per_s_median"] / (rows[name]["tokens_per_s_median"])
        )
    return rows


def fast_path_share(model, work, top_k: int) -> float:
    """Share of rows whose first-step nucleus the top-k prefilter decides without a full sort."""
    input_ids, mask = work[0]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids)
    probs = logits.logits[:, -1].float().softmax(-1)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1).values
    _, _, exact = nucleus._cut(top, 0.9)
    m = 1 + (top.cumsum(-1)[:, :-1] < 0.9).sum(-1, keepdim=True)
    return float((exact & (m < top.shape[-1])).float().mean())


# --- weight rebuild -------------------------------------------------------------------------


def copy_bandwidth(nbytes: int, device: torch.device, repeats: int) -> float:
    """Bytes/s of a device copy (read + write counted) on buffers of `nbytes`."""
    src = torch.empty(max(1, nbytes // 4), dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    best = min(timed(lambda: dst.copy_(src), device)[0] for _ in range(repeats + 1))
    return 2 * src.numel() * 4 / best


def rebuild(bases: dict, device: torch.device, dtype: torch.dtype, repeats: int) -> dict:
    """Time of one in-place rebuild (3 bases) against bytes moved over the copy bandwidth."""
    interpolator = merge.Interpolator(bases, device=device, dtype=dtype)
    names = list(bases)
    point = {names[0]: 0.2, names[1]: 1.3, names[2]: -0.5}
    times = [timed(lambda: interpolator.rebuild(point), device)[0] for _ in range(repeats)]
    bandwidth = copy_bandwidth(interpolator.stack.numel() * 4, device, repeats)
    floor = interpolator.nbytes / bandwidth
    best = min(times[1:])
    return {
        "bases": len(names),
        "weights": interpolator.flat.numel(),
        "dtype": str(dtype).removeprefix("torch."),
        "bytes_moved": interpolator.nbytes,
        "copy_bandwidth_GBps": bandwidth / 1e9,
        "floor_s": floor,
        "best_s": best,
        "median_s": statistics.median(times[1:]),
        "best_over_floor": best / floor,
    }


# --- (a) CPU --------------------------------------------------------------------------------


def cpu_section(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    device = torch.device("cpu")
    trained = (args.model / "config.json").exists()
    if trained:
        model = checkpoints.load(args.model)
        eos = tok.load(args.model).eos_token_id
    else:
        eos = 0
        vocab = config["tokenizer"]["vocab_size"]
        model = pretrain.gpt2(vocab, eos, config["model"], seed=0).eval()
    if trained and args.prompts.exists():
        texts = pd.read_parquet(args.prompts).text.tolist()
        prompt_ids = sampler.encode_prompts(texts, tok.load(args.model))
        source = str(args.prompts)
    else:
        prompt_ids = random_prompts(27, model.config.vocab_size, eos)
        source = "27 random prompts of 5-11 tokens"
    batch_size = config["generation"]["batch_size"]
    work = batches(prompt_ids, args.samples, batch_size, eos, device)
    rows = throughput(model, work, eos, args.repeats, device, args.top_k, False, HF_VARIANTS)
    others = {name: copy.deepcopy(model) for name in ("theta_pos", "theta_neg")}
    return {
        "model": str(args.model) if trained else "random weights (config.yaml model)",
        "arch": {
            k: getattr(model.config, k) for k in ("n_layer", "n_head", "n_embd", "vocab_size")
        },
        "prompts": source,
        "sequences": sum(len(b[0]) for b in work),
        "batch_size": batch_size,
        "threads": args.threads,
        "top_k": args.top_k,
        "fast_path_share_first_step": fast_path_share(model, work, args.top_k),
        "generation": rows,
        "rebuild": rebuild({"theta0": model, **others}, device, torch.float32, REBUILD_REPEATS),
    }


def random_prompts(n: int, vocab: int, eos: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 11, (n,), generator=g).tolist()
    return [[eos, *torch.randint(1, vocab, (k,), generator=g).tolist()] for k in lengths]


# --- (b) CUDA -------------------------------------------------------------------------------


def gpt2(arch: dict, vocab: int, device, dtype, ln_f_gain: float = 1.0) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=vocab, n_positions=1024, **arch, bos_token_id=0, eos_token_id=0, pad_token_id=0
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).to(device=device, dtype=dtype).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(ln_f_gain)
    return model


def matmul_rate(device: torch.device, n: int, repeats: int) -> float:
    """Measured bf16 matmul FLOP/s on n × n matrices."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    best = min(timed(lambda: a @ b, device)[0] for _ in range(repeats + 2))
    return 2 * n**3 / best


def scoring_rate(model, device, batch: int, length: int, repeats: int) -> float:
    """Scored tokens/s of a bf16 forward with float32 log-softmax (perplexity's inner loop)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(1, model.config.vocab_size, (batch, length), generator=g).to(device)

    def score():
        with torch.inference_mode():
            logits = model(input_ids=ids).logits
            return logits.float().log_softmax(-1).gather(-1, ids[:, 1:, None])

    best = min(timed(score, device)[0] for _ in range(repeats + 1))
    return batch * (length - 1) / best


def cuda_section(args: argparse.Namespace) -> dict:
    device = torch.device("cpu" if args.smoke else "cuda")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    large = {"n_layer": 2, "n_head": 2, "n_embd": 64} if args.smoke else GPT2_SHAPES["gpt2-large"]
    xl = {"n_layer": 2, "n_head": 2, "n_embd": 64} if args.smoke else GPT2_SHAPES["gpt2-xl"]
    vocab = 512 if args.smoke else GPT2_VOCAB
    n_prompts = 4 if args.smoke else args.cuda_prompts
    samples = 2 if args.smoke else args.samples
    model = gpt2(large, vocab, device, dtype, args.ln_f_gain)
    eos = model.config.eos_token_id
    work = batches(random_prompts(n_prompts, vocab, eos), samples, n_prompts * samples, eos, device)
    rows = throughput(
        model, work, eos, args.repeats, device, args.top_k, not args.smoke, HF_VARIANTS
    )
    params = sum(p.numel() for p in model.parameters()) - model.transformer.wpe.weight.numel()
    rate = matmul_rate(device, 512 if args.smoke else 8192, args.repeats)
    floor_tokens_per_s = rate / (2 * params)  # one multiply-add per weight per token
    fp32_model = gpt2(large, vocab, "cpu", torch.float32)
    bases = {name: fp32_model for name in ("theta0", "theta_pos", "theta_neg")}
    rebuilt = rebuild(bases, device, dtype, REBUILD_REPEATS)
    del fp32_model, bases
    judge = gpt2(xl, vocab, device, dtype)
    scored_per_s = scoring_rate(judge, device, 8 if args.smoke else 512, 40, args.repeats)
    plan = paper_plan(yaml.safe_load(PAPER_CONFIG.read_text()))
    sampled_per_s = rows["ours"]["tokens_per_s_median"]
    projection = {
        # a DExperts token costs three forwards (θ0, θ+, θ−)
        "sampling_s": (plan["weight_points"] + 3 * plan["dexperts_points"])
        * plan["sampled_tokens_per_point"]
        / sampled_per_s,
        "scoring_s": plan["points"] * plan["scored_tokens_per_point"] / scored_per_s,
        "rebuild_s": plan["weight_points"] * rebuilt["median_s"],
    }
    projection["total_min"] = sum(projection.values()) / 60
    return {
        "device": "smoke run on CPU" if args.smoke else torch.cuda.get_device_name(device),
        "model": f"random-weight GPT-2 Large {large}, {dtype}, ln_f gain {args.ln_f_gain}",
        "sequences": sum(len(b[0]) for b in work),
        "top_k": args.top_k,
        "fast_path_share_first_step": fast_path_share(model, work, args.top_k),
        "generation": rows,
        "bf16_matmul_TFLOPs": rate / 1e12,
        "compute_floor_tokens_per_s": floor_tokens_per_s,
        "ours_over_floor": sampled_per_s / floor_tokens_per_s,
        "rebuild": rebuilt,
        "scoring_gpt2_xl_tokens_per_s": scored_per_s,
        "paper_projection": plan | projection,
    }


def paper_plan(config: dict) -> dict:
    """The paper DAG's evaluation work, counted from its config as the Snakefile counts it.

    Points: every family of `paths` (`paths.family_points`) plus the DExperts α grid; jobs: their
    chunks of `evaluation.points_per_job` (`paths.chunks`, the `evaluate` rule's wildcards).
    Tokens are upper bounds: every sequence runs to `max_new_tokens`; scored texts are the
    first `perplexity_samples` samples of each prompt, prompt (≤ `prompts.max_tokens`) +
    continuation. Test-set NLL and the classifiers are not counted (measured apart).
    """
    grids = {f: paths.family_points(f, c) for f, c in config["paths"].items() if f != "merges"}
    for name, entry in config["paths"].get("merges", {}).items():  # merge-method families
        grids[name] = families.family_points(families.resolve(name, entry, mergekit_yaml.read))
    grids[paths.DEXPERTS] = paths.family_points(
        paths.DEXPERTS, {"alpha": config["dexperts"]["alpha"]}
    )
    per_job = config["evaluation"]["points_per_job"]
    counts = {f: len(grid) for f, grid in grids.items()}
    jobs = sum(len(paths.chunks(grid, per_job)) for grid in grids.values())
    p, g = config["prompts"], config["generation"]
    prompts = p["neutral"] + p["positive"] + p["negative"] + len(p.get("fixed", []))
    sequences = prompts * g["samples_per_prompt"]
    scored = prompts * min(config["evaluation"]["perplexity_samples"], g["samples_per_prompt"])
    return {
        "points_per_family": counts,
        "points": sum(counts.values()),
        "weight_points": sum(counts.values()) - counts[paths.DEXPERTS],
        "dexperts_points": counts[paths.DEXPERTS],
        "evaluate_jobs": jobs,
        "prompts": prompts,
        "sequences_per_point": sequences,
        "sampled_tokens_per_point": sequences * g["max_new_tokens"],
        "scored_tokens_per_point": scored * (p["max_tokens"] + 1 + g["max_new_tokens"]),
    }


# --- report ---------------------------------------------------------------------------------


def table(section: str, result: dict) -> str:
    lines = [f"\n== {section}: {result.get('device', 'cpu')}, {result['sequences']} sequences"]
    lines.append(f"{'engine':<22}{'best tok/s':>12}{'median tok/s':>14}{'ours ×':>10}")
    for name, row in result["generation"].items():
        speedup = row.get("ours_speedup_median")
        lines.append(
            f"{name:<22}{row['tokens_per_s_best']:>12,.0f}{row['tokens_per_s_median']:>14,.0f}"
            + (f"{speedup:>10.2f}" if speedup else f"{'':>10}")
        )
    r = result["rebuild"]
    lines.append(
        f"rebuild ({r['bases']} bases, {r['weights']:,} weights, {r['dtype']}): "
        f"{r['best_s'] * 1e3:.2f} ms, floor {r['floor_s'] * 1e3:.2f} ms "
        f"({r['bytes_moved'] / 1e6:.0f} MB at {r['copy_bandwidth_GBps']:.1f} GB/s), "
        f"×{r['best_over_floor']:.2f}"
    )
    lines.append(f"top-k prefilter decides {result['fast_path_share_first_step']:.0%} of rows")
    if "paper_projection" in result:
        p = result["paper_projection"]
        lines.append(
            f"compute floor {result['compute_floor_tokens_per_s']:,.0f} tok/s "
            f"({result['bf16_matmul_TFLOPs']:.0f} TFLOP/s bf16); ours at "
            f"{result['ours_over_floor']:.0%} of it"
        )
        lines.append(
            f"GPT-2 XL scoring {result['scoring_gpt2_xl_tokens_per_s']:,.0f} tok/s; paper "
            f"evaluation projected at {p['total_min']:.1f} min (sampling {p['sampling_s']:.0f} s, "
            f"scoring {p['scoring_s']:.0f} s, rebuilds {p['rebuild_s']:.0f} s)"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse()
    report = {
        "host": platform.node(),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "skipped": {},
    }
    if args.device in ("auto", "cpu"):
        report["cpu"] = cpu_section(args)
        print(table("CPU", report["cpu"]))
    if args.device in ("auto", "cuda"):
        if torch.cuda.is_available() or args.smoke:
            report["cuda"] = cuda_section(args)
            print(table("CUDA", report["cuda"]))
        else:
            reason = "CUDA is not available on this machine: GPU section not measured"
            report["skipped"]["cuda"] = reason
            print(f"\n== CUDA: skipped ({reason})")
            if args.device == "cuda":
                raise SystemExit(reason)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
