"""Sampling short continuations from causal LMs: nucleus sampling and DExperts logit ensembles.

The paper samples 25 continuations of at most 30 new tokens per prompt with nucleus sampling,
top-p 0.9 (Rofin et al. 2022, https://arxiv.org/abs/2211.12092, Section 4). One sampler serves
both kinds of experiment: at each step every model in `models` gives next-token logits and a
`combine` function merges them — `plain` for a single (weight-interpolated) model, `dexperts`
for the output-space ensemble z = z0 + α·(z+ − z−) of Liu et al. 2021.

The loop is the textbook one, kept small so that it can be checked against Hugging Face
`generate` token for token (the tests do, greedily): prompts are prefixed with EOS (the models
were trained on [EOS] + sentence), left-padded, given position ids counted from the attention
mask (padding does not shift positions), and decoded with a static KV cache per model, sized to
prompt + max_new_tokens and allocated once per batch. Batches are large (all samples of many
prompts) and sorted by prompt length; on CUDA the one-token step is compiled (CUDA graphs).

Two departures from the textbook. The nucleus is exact, but without a full sort of the logits
(`lmlerp.generate.nucleus`). And every sequence (prompt, sample) draws its uniforms from its own
`torch.Generator`, seeded from (seed, prompt id, sample id) (`sequence_uniforms`): a sequence's
text does not depend on the batch it lands in, on the batch size or on the other prompts, so a
point's samples are a function of its settings alone (what the point cache relies on).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Hashable, Sequence

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StaticCache

from lmlerp.generate.combiners import Combine
from lmlerp.generate.nucleus import TOP_K, check_p, next_token
from lmlerp.train.loss import context_length

TABLE_COLUMNS = ["prompt_id", "sample_id", "prompt", "continuation", "n_new_tokens", "ended"]


def encode_prompts(prompts: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> list[list[int]]:
    """Token ids of each prompt, prefixed by EOS: the models were trained on [EOS] + sentence."""
    eos = tokenizer.eos_token_id
    return [[eos, *tokenizer.encode(text, add_special_tokens=False)] for text in prompts]


def left_pad(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists into (input_ids, attention_mask), both (B, T) int64."""
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
    for b, row in enumerate(ids):
        if row:
            input_ids[b, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[b, width - len(row) :] = 1
    return input_ids, attention_mask


@torch.inference_mode()
def decode(
    models: Sequence[PreTrainedModel],
    combine: Combine,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    top_p: float | None,
    uniforms: torch.Tensor | None,
    eos_id: int,
    greedy: bool = False,
    top_k: int = TOP_K,
    compile: bool = False,
    cache_length: int | None = None,
) -> torch.Tensor:
    """New token ids (B, S) for a left-padded batch, S ≤ max_new_tokens.

    Each model gets a static KV cache of `cache_length` positions (default: prompt width +
    max_new_tokens), made once per model and shape and reset between batches (`_static_cache`);
    the attention mask is preallocated at that width too and a step only switches on its own
    column, so no tensor grows during decoding (DESIGN §6). Positions count real tokens only, so
    a padded prompt sees the positions it saw in training. With `compile` the one-token decode
    step runs through `torch.compile` (CUDA graphs on CUDA: every shape is static); the prompt's
    pass stays eager. A row that has produced EOS gets EOS (the padding token) from then on, and
    the loop stops once every row has finished — Hugging Face `generate`'s convention, so that
    greedy outputs compare token for token. Row b's step t draws with `uniforms[b, t]`
    ((B, ≥ max_new_tokens) in [0, 1), `sequence_uniforms`; None when greedy). A model listed
    twice (DExperts with θ+ as its own anti-expert) runs once per step: its KV cache is one.
    """
    batch, width = input_ids.shape
    length = width + max_new_tokens if cache_length is None else cache_length
    if length < width + max_new_tokens:
        raise ValueError(f"cache_length {length} < prompt width {width} + {max_new_tokens}")
    mask = attention_mask.new_zeros((batch, length))  # (B, L)
    mask[:, :width] = attention_mask
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    distinct = list({id(model): model for model in models}.values())  # one cache per model
    caches = [_static_cache(model, batch, length) for model in distinct]
    steps = [_compiled(m) if compile else m for m in distinct]
    inputs = input_ids
    finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    new_tokens = []
    for t in range(max_new_tokens):
        logits = {}
        for k, model in enumerate(distinct if t == 0 else steps):
            out = model(
                input_ids=inputs,
                attention_mask=mask,
                position_ids=position_ids,
                past_key_values=caches[k],
                use_cache=True,
                logits_to_keep=1,  # the prompt's other positions are never sampled from
            )
            # a copy: a CUDA graph's output is overwritten by its next replay
            logits[id(distinct[k])] = out.logits[:, -1, :].to(torch.float32, copy=True)  # (B, V)
        u = None if uniforms is None else uniforms[:, t : t + 1]  # (B, 1)
        token = next_token(combine([logits[id(m)] for m in models]), top_p, u, greedy, top_k)
        token = token.masked_fill(finished, eos_id)
        new_tokens.append(token)
        finished |= token == eos_id
        if t + 1 == max_new_tokens or ((t + 1) % FINISHED_EVERY == 0 and finished.all()):
            break
        inputs = token[:, None]  # (B, 1)
        mask[:, width + t] = 1
        position_ids = position_ids[:, -1:] + 1
    return _until_all_ended(torch.stack(new_tokens, dim=1), eos_id)


FINISHED_EVERY = 4  # steps between `finished.all()`, a host sync (a GPU stalls on one per step)


def _until_all_ended(tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(B, S) tokens cut after the step where the last row produced its first EOS (all when one
    never did): what a loop that stops on `finished.all()` at every step returns."""
    ended = tokens == eos_id  # (B, S)
    last = torch.where(ended.any(1), ended.int().argmax(1), tokens.shape[1] - 1).max()
    return tokens[:, : int(last) + 1]


def sequence_seed(seed: int, prompt_id: Hashable, sample_id: int) -> int:
    """The 63-bit seed of one sequence: sha256 of "seed/prompt_id/sample_id" (stable across runs,
    machines and Python versions, unlike `hash`)."""
    digest = hashlib.sha256(f"{seed}/{prompt_id}/{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def sequence_uniforms(
    seed: int, sequences: Sequence[tuple[Hashable, int]], steps: int
) -> torch.Tensor:
    """(N, steps) float32 uniforms in [0, 1), row n from its own CPU `torch.Generator` seeded by
    `sequence_seed(seed, *sequences[n])`: drawn once per point (20 ms for the paper's 2,500
    sequences), moved with the batch; the decode loop stays one tensor op per step."""
    rows = [
        torch.rand(steps, generator=torch.Generator().manual_seed(sequence_seed(seed, *key)))
        for key in sequences
    ]
    return torch.stack(rows) if rows else torch.empty((0, steps))


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _static_cache(model: PreTrainedModel, batch: int, length: int) -> StaticCache:
    """A zeroed static KV cache of `batch` × `length` positions for `model`, reused by shape.

    A job samples every point with the same batches: reusing the cache spares its allocation
    and, on CUDA, keeps the addresses a recorded CUDA graph reads. Two shapes are kept per model
    (the full batch and the last, smaller one).
    """
    held = _CACHES.setdefault(model, {})
    if (batch, length) in held:
        held[batch, length].reset()
    else:
        while len(held) >= 2:
            held.pop(next(iter(held)))
        held[batch, length] = StaticCache(config=model.config, max_cache_len=length)
    return held[batch, length]


def _compiled(model: PreTrainedModel) -> Callable:
    """The model under `torch.compile`, made once per model; CUDA graphs on CUDA.

    Weights rewritten in place (`space.merge.Interpolator`) keep their addresses, so one compiled
    graph serves every point of a job.
    """
    if model not in _COMPILED:
        mode = "reduce-overhead" if next(model.parameters()).is_cuda else "default"
        _COMPILED[model] = torch.compile(model, mode=mode, dynamic=False)
    return _COMPILED[model]


def _check(models: Sequence[PreTrainedModel], longest: int, max_new_tokens: int) -> torch.device:
    """Fail before any work: same device and vocabulary everywhere, positions long enough."""
    if not models:
        raise ValueError("sample needs at least one model")
    device = next(models[0].parameters()).device
    for k, model in enumerate(models):
        if (other := next(model.parameters()).device) != device:
            raise ValueError(f"model {k} is on {other}, model 0 on {device}")
        if model.config.vocab_size != models[0].config.vocab_size:
            raise ValueError(
                f"model {k} has vocabulary {model.config.vocab_size}, "
                f"model 0 has {models[0].config.vocab_size}: logits cannot be combined"
            )
        n_positions = context_length(model)
        if n_positions is not None and longest + max_new_tokens > n_positions:
            raise ValueError(
                f"model {k} has {n_positions} positions but the longest prompt ({longest} tokens "
                f"with EOS) plus max_new_tokens={max_new_tokens} needs {longest + max_new_tokens}"
            )
    return device


def sample(
    models: Sequence[PreTrainedModel],
    combine: Combine,
    prompts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    top_p: float | None,
    seed: int,
    batch_size: int,
    greedy: bool = False,
    top_k: int = TOP_K,
    compile: bool | None = None,
    prompt_ids: Sequence[Hashable] | None = None,
) -> list[dict]:
    """Sample `samples_per_prompt` continuations of every prompt, in batches of sequences.

    Sequences (prompt × sample) are batched in order of prompt length, so that a batch holds
    little padding, and returned in prompt then sample order.

    Args:
        models: one model (a path point) or several whose logits `combine` merges (DExperts:
            [base, expert, anti-expert]); put in eval mode here; all on one device.
        combine: maps the list of (B, V) float32 logits to one (B, V) tensor; see `plain`,
            `dexperts`.
        prompts: prompt texts; each is encoded as [EOS] + ids.
        tokenizer: its EOS token is the prompt prefix, the stop token and the padding.
        samples_per_prompt: continuations per prompt (25 in the paper).
        max_new_tokens: at most this many new tokens, EOS included (30 in the paper).
        top_p: nucleus mass (0.9 in the paper); None samples from the full distribution.
        seed: with each sequence's (prompt id, sample id), seeds that sequence's own
            `torch.Generator` (`sequence_uniforms`): a text depends on its prompt, ids, seed and
            the models, not on `batch_size` nor on the other prompts.
        batch_size: sequences per forward pass (prompts × samples are flattened first).
        greedy: take the argmax instead of sampling (for checks against `generate`).
        top_k: candidates of the exact top-p prefilter (0: full sort); changes speed, not texts
            (up to float rounding at the nucleus boundary).
        compile: `torch.compile` the decode step; None compiles on CUDA only (on CPU it costs
            compile time and gains nothing at these sizes).
        prompt_ids: the prompts' stable ids (default: their indices), part of each seed.

    Returns:
        One dict per sequence, ordered by prompt then sample: `prompt_index`, `sample_id`,
        `continuation` (decoded without special tokens), `n_new_tokens` (tokens generated, the
        final EOS included), `ended` (whether EOS was generated), `token_ids` (without EOS).
    """
    sizes = {"samples_per_prompt": samples_per_prompt, "max_new_tokens": max_new_tokens}
    for name, value in (sizes | {"batch_size": batch_size}).items():
        if value < 1:
            raise ValueError(f"{name} must be ≥ 1, got {value}")
    check_p("top_p", top_p)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token")
    if prompt_ids is not None and len(prompt_ids) != len(prompts):
        raise ValueError(f"{len(prompt_ids)} prompt_ids for {len(prompts)} prompts")
    encoded = encode_prompts(prompts, tokenizer)
    if not encoded:
        return []
    longest = max(map(len, encoded))
    device = _check(models, longest, max_new_tokens)
    for model in models:
        model.eval()
    ids = list(range(len(prompts))) if prompt_ids is None else list(prompt_ids)
    jobs = [(i, j) for i in range(len(prompts)) for j in range(samples_per_prompt)]
    jobs.sort(key=lambda job: len(encoded[job[0]]))  # stable: ties keep prompt order
    uniforms = None
    if not greedy:
        uniforms = sequence_uniforms(seed, [(ids[i], j) for i, j in jobs], max_new_tokens)
    if compile is None:
        compile = device.type == "cuda"
    rows = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        input_ids, attention_mask = left_pad([encoded[i] for i, _ in chunk], eos)
        rows_u = None if uniforms is None else uniforms[start : start + batch_size].to(device)
        new = decode(
            models,
            combine,
            input_ids.to(device),
            attention_mask.to(device),
            max_new_tokens=max_new_tokens,
            top_p=top_p,
            uniforms=rows_u,
            eos_id=eos,
            greedy=greedy,
            top_k=top_k,
            compile=compile,
            cache_length=longest + max_new_tokens,  # one cache shape for every batch
        ).tolist()
        for (i, j), tokens in zip(chunk, new, strict=True):
            rows.append(_row(i, j, tokens, eos, tokenizer))
    return sorted(rows, key=lambda row: (row["prompt_index"], row["sample_id"]))


def _row(i: int, j: int, tokens: list[int], eos: int, tokenizer) -> dict:
    """One output record; `tokens` runs to the batch's length, EOS-padded after the end."""
    ended = eos in tokens
    n_new = tokens.index(eos) + 1 if ended else len(tokens)
    kept = tokens[: n_new - 1] if ended else tokens
    text = tokenizer.decode(kept, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return dict(prompt_index=i, sample_id=j, continuation=text, n_new_tokens=n_new, ended=ended,
                token_ids=kept)  # fmt: skip


def generate_table(
    models: Sequence[PreTrainedModel],
    combine: Combine,
    prompts: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    **sampling,
) -> pd.DataFrame:
    """`sample` over a prompts table (columns prompt_id, text) as a tidy table.

    Returns the columns `TABLE_COLUMNS`: prompt_id, sample_id, prompt, continuation,
    n_new_tokens, ended. The caller adds the coordinates (family, α, β, seed, …).
    """
    missing = {"prompt_id", "text"} - set(prompts.columns)
    if missing:
        raise ValueError(f"prompts table lacks columns {sorted(missing)}")
    texts = prompts["text"].tolist()
    ids = prompts["prompt_id"].tolist()
    rows = sample(models, combine, texts, tokenizer, prompt_ids=ids, **sampling)
    return pd.DataFrame(
        [
            {
                "prompt_id": ids[r["prompt_index"]],
                "sample_id": r["sample_id"],
                "prompt": texts[r["prompt_index"]],
                "continuation": r["continuation"],
                "n_new_tokens": r["n_new_tokens"],
                "ended": r["ended"],
            }
            for r in rows
        ],
        columns=TABLE_COLUMNS,
    )
