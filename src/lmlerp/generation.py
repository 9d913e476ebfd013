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

The one departure from the textbook is the nucleus: a full sort of (B, V) logits with their
indices is the step's dominant cost (on CPU ≈70% of a 4 × 128 GPT-2's step; on an H100 three
times GPT-2 Large's forward floor, DESIGN §6). `_nucleus` first takes the top-k probability
values and decides from them alone where that is exact (the nucleus fits in k and no tie
crosses its boundary), sorts the full row of probability values only for the other rows, and
never sorts token ids; `next_token` then draws by an inverse-CDF lookup instead of
`multinomial`. Both are exact, and tested against a full stable sort.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StaticCache

Combine = Callable[[list[torch.Tensor]], torch.Tensor]

TOP_K = 256  # candidates of the top-k prefilter; rows whose top-k mass is short of p fall back
TABLE_COLUMNS = ["prompt_id", "sample_id", "prompt", "continuation", "n_new_tokens", "ended"]


def top_p_filter(logits: torch.Tensor, p: float, top_k: int = TOP_K) -> torch.Tensor:
    """Nucleus (top-p) filtering: logits outside the nucleus become −inf.

    The nucleus V(p) is the smallest set of highest-probability tokens whose cumulative
    probability reaches p: Σ_{x ∈ V(p)} P(x) ≥ p (Holtzman et al. 2020, Section 3.1,
    https://arxiv.org/abs/1904.09751). With tokens sorted by decreasing probability, token k is
    kept iff the mass before it, Σ_{j<k} P(x_j), is < p; the top token is always kept, so p → 0
    is greedy and p = 1 keeps every token of non-zero probability.

    Ties are broken deterministically, as a stable sort would: when equal probabilities straddle
    the boundary, the lower token ids are kept. This is the rule of Hugging Face
    `TopPLogitsWarper` (which removes tokens whose ascending cumulative probability is ≤ 1 − p),
    up to float rounding at the boundary and except for ties, which its unstable sort breaks
    arbitrarily. The older `top_k_top_p_filtering` used by DExperts keeps a token when the mass
    before it is ≤ p, one more token when that mass equals p exactly (probability zero for
    continuous logits).

    Args:
        logits: (..., V) unnormalised log-probabilities.
        p: nucleus mass in [0, 1].
        top_k: candidates of the exact top-k prefilter (0: full sort); see `_nucleus`.

    Returns:
        A tensor of the same shape, with −inf outside the nucleus.
    """
    _check_p("top-p", p)
    if p == 1.0:
        return logits  # rounding could push the cumulative mass to 1 before the last tokens
    _, keep = _nucleus(logits, p, top_k)
    return logits.masked_fill(~keep, float("-inf"))


def _check_p(name: str, p: float | None) -> None:
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p}")


def _nucleus(
    logits: torch.Tensor, p: float, top_k: int = TOP_K
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and nucleus mask, both (..., V) in vocabulary order; see `top_p_filter`.

    Only probability values are sorted, never token ids: the nucleus is every token of
    probability ≥ τ, the smallest nucleus probability, unless tokens tie with τ beyond the
    nucleus size m; then only the lowest-id ones that fit are kept — the stable sort's answer
    without its permutation.

    Top-k prefilter (exact): the k largest values are the first k of the full descending sort,
    so their cumulative sums are the sort's first k. Where the top-k mass reaches p, the nucleus
    size m = 1 + #{j < k−1 : cum_j < p} ≤ k is the full sort's; if moreover m < k and exactly m
    of the top-k values are ≥ τ, nothing outside the top k ties with τ and the nucleus is
    {x : P(x) ≥ τ}. The other rows (a flat distribution, a tie at the boundary) take the full
    sort. The set is the same either way; k only moves work between the two paths.
    """
    probs = logits.float().softmax(dim=-1)
    if probs.dim() != 2:
        flat, keep = _nucleus(logits.reshape(-1, logits.shape[-1]), p, top_k)
        return flat.view(probs.shape), keep.view(probs.shape)
    tau = probs.new_empty((probs.shape[0], 1))
    slow = torch.arange(probs.shape[0], device=probs.device)
    if 0 < top_k < probs.shape[-1] - 1:
        top = _top_values(probs, top_k)  # (B, k) descending
        m, tau, exact = _cut(top, p)
        exact &= m < top_k
        slow = (~exact[:, 0]).nonzero()[:, 0]
    if slow.numel():
        descending = _sort_descending(probs[slow])
        m_slow, tau[slow], exact = _cut(descending, p)
    keep = probs >= tau
    if slow.numel() and not exact.all():  # ties straddle the boundary: rare for float32 logits
        tied = slow[~exact[:, 0]]
        keep[tied] = _lowest_ids_first(probs[tied], m_slow[~exact[:, 0]], tau[tied])
    return probs, keep


def _cut(descending: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nucleus size m, threshold τ and exactness of {P ≥ τ}, from sorted values; each (B, 1).

    `descending` holds each row's largest values in decreasing order (all V, or the top k).
    Token j (0-based, sorted) is kept iff the mass before it, cum_{j−1}, is < p: the top token
    always, then one more for every cumulative sum short of p. {P ≥ τ} is the nucleus when
    exactly m values are ≥ τ and, for a top-k prefix, when the prefix's mass reaches p.
    """
    cumulative = _running_sum(descending)
    target = cumulative.new_full((len(descending), 1), p)
    m = 1 + torch.searchsorted(cumulative[:, :-1].contiguous(), target)  # #{cum_j < p}
    tau = descending.gather(-1, m - 1)
    at_least_tau = torch.searchsorted(-descending, -tau, right=True)  # ascending negation
    return m, tau, (at_least_tau == m) & (cumulative[:, -1:] >= p)


FIXED_POINT = 2.0**40  # resolution of CUDA running sums of probabilities: 9e-13


def _running_sum(values: torch.Tensor, fixed_point: bool | None = None) -> torch.Tensor:
    """Cumulative sums along the last dimension, the same on every run.

    On CUDA a floating-point `cumsum` is non-deterministic (a parallel scan; it raises under
    `torch.use_deterministic_algorithms`, which evaluation jobs turn on), so probabilities are
    summed in int64 fixed point (exact, deterministic) with a resolution of 2⁻⁴⁰ per value and
    returned as float64. On CPU the sequential float32 `cumsum` is already deterministic.
    `fixed_point` forces either way (None: on CUDA only).
    """
    if not (values.is_cuda if fixed_point is None else fixed_point):
        return values.cumsum(dim=-1)
    fixed = (values.double() * FIXED_POINT).round_().long()
    return fixed.cumsum(dim=-1).double() / FIXED_POINT


def _lowest_ids_first(probs: torch.Tensor, m: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Nucleus mask of rows where tokens tie with τ across the boundary: lowest ids kept."""
    above = probs > tau
    tied = probs == tau
    room = m - above.sum(dim=-1, keepdim=True)  # (B, 1) ≥ 1 tokens equal to τ fit
    return above | (tied & (tied.cumsum(dim=-1) <= room))


def _top_values(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest values of each row, in decreasing order (no indices); (B, k)."""
    if values.device.type == "cpu":
        # numpy's partition + sort of k values: ≈1.8 ms for 110 × 8,192 floats on one core,
        # against 6–17 ms for torch.topk (k = 32–256), which also builds indices
        part = np.partition(values.detach().numpy(), values.shape[-1] - k, axis=-1)[:, -k:]
        return torch.from_numpy(-np.sort(-part, axis=-1))
    return torch.topk(values, k, dim=-1, sorted=True).values


def _sort_descending(values: torch.Tensor) -> torch.Tensor:
    """Values sorted in decreasing order along the last dimension (no indices)."""
    if values.device.type == "cpu":
        # numpy's SIMD sort of bare values is ≈20× faster than torch.sort on CPU, which also
        # builds indices: 5.6 ms for 165 × 8,192 floats on one core, against 113 ms
        return torch.from_numpy(-np.sort(-values.detach().numpy(), axis=-1))
    return torch.sort(values, dim=-1, descending=True).values


def next_token(
    logits: torch.Tensor,
    top_p: float | None,
    generator: torch.Generator,
    greedy: bool = False,
    top_k: int = TOP_K,
) -> torch.Tensor:
    """One token per row of (B, V) logits: the argmax if `greedy`, else a top-p draw; (B,).

    A draw is an inverse-CDF lookup: u ~ U[0, mass of the nucleus) searched in the cumulative
    sums of the nucleus probabilities in vocabulary order. It has the distribution of
    `torch.multinomial` on the softmax of `top_p_filter(logits, top_p)`, without a second
    softmax or `multinomial` itself (≈40 ms for 165 × 8,192 on one core). `top_p=None` or 1
    draws from the full distribution. `top_k` sizes the exact prefilter of `_nucleus` (0: the
    full sort always).
    """
    _check_p("top_p", top_p)
    if greedy:
        return logits.argmax(dim=-1)
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device)
    if top_p is None or top_p == 1.0:
        weights = logits.float().softmax(dim=-1)
    else:
        probs, keep = _nucleus(logits, top_p, top_k)
        weights = torch.where(keep, probs, 0.0)
    cumulative = _running_sum(weights)  # (B, V)
    total = cumulative[:, -1:].contiguous()  # (B, 1)
    # right=True skips zero-probability tokens; a u rounded up to `total` falls back on the last
    # token of positive probability, the first to reach `total`
    index = torch.searchsorted(cumulative, u.to(total.dtype) * total, right=True)
    return index.minimum(torch.searchsorted(cumulative, total)).squeeze(-1)


def plain(logits_list: list[torch.Tensor]) -> torch.Tensor:
    """The combine function of a single model: its own logits."""
    return logits_list[0]


def dexperts(alpha: float, filter_p: float | None = None) -> Combine:
    """DExperts ensemble of a base, an expert and an anti-expert, as a combine function.

    z_t = z0_t + α·(z+_t − z−_t)  (Liu et al. 2021, https://arxiv.org/abs/2105.03023, Section 2),
    with logits from the models [θ0 (base), θ+ (expert), θ− (anti-expert)] in that order. If
    `filter_p` is set, z0 is first restricted to its own top-p nucleus (−inf outside), as in the
    DExperts code (`filter_p`, 0.9 in their experiments), so that the experts can only re-rank
    tokens the base finds plausible. The sampler's own `top_p` then applies to z.
    """
    _check_p("filter_p", filter_p)

    def combine(logits_list: list[torch.Tensor]) -> torch.Tensor:
        if len(logits_list) != 3:
            raise ValueError(
                f"dexperts needs logits of 3 models [base, expert, anti-expert], "
                f"got {len(logits_list)}"
            )
        z0, z_pos, z_neg = logits_list
        if filter_p is not None:
            z0 = top_p_filter(z0, filter_p)
        return z0 + alpha * (z_pos - z_neg)

    return combine


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
    generator: torch.Generator,
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
    greedy outputs compare token for token.
    """
    batch, width = input_ids.shape
    length = width + max_new_tokens if cache_length is None else cache_length
    if length < width + max_new_tokens:
        raise ValueError(f"cache_length {length} < prompt width {width} + {max_new_tokens}")
    mask = attention_mask.new_zeros((batch, length))  # (B, L)
    mask[:, :width] = attention_mask
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    caches = [_static_cache(model, batch, length) for model in models]
    steps = [_compiled(m) if compile else m for m in models]
    inputs = input_ids
    finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    new_tokens = []
    for t in range(max_new_tokens):
        logits = []
        for k, model in enumerate(models if t == 0 else steps):
            out = model(
                input_ids=inputs,
                attention_mask=mask,
                position_ids=position_ids,
                past_key_values=caches[k],
                use_cache=True,
                logits_to_keep=1,  # the prompt's other positions are never sampled from
            )
            # a copy: a CUDA graph's output is overwritten by its next replay
            logits.append(out.logits[:, -1, :].to(torch.float32, copy=True))  # (B, V)
        token = next_token(combine(logits), top_p, generator, greedy, top_k)
        token = token.masked_fill(finished, eos_id)
        new_tokens.append(token)
        finished |= token == eos_id
        if t + 1 == max_new_tokens or finished.all():
            break
        inputs = token[:, None]  # (B, 1)
        mask[:, width + t] = 1
        position_ids = position_ids[:, -1:] + 1
    return torch.stack(new_tokens, dim=1)


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

    Weights rewritten in place (`merge.Interpolator`) keep their addresses, so one compiled
    graph serves every point of a job.
    """
    if model not in _COMPILED:
        cuda = next(model.parameters()).device.type == "cuda"
        mode = "reduce-overhead" if cuda else "default"
        _COMPILED[model] = torch.compile(model, mode=mode, dynamic=False)
    return _COMPILED[model]


def _check(models: Sequence[PreTrainedModel], longest: int, max_new_tokens: int) -> torch.device:
    """Fail before any work: same device and vocabulary everywhere, positions long enough."""
    if not models:
        raise ValueError("sample needs at least one model")
    device = next(models[0].parameters()).device
    for k, model in enumerate(models):
        if next(model.parameters()).device != device:
            raise ValueError(
                f"model {k} is on {next(model.parameters()).device}, model 0 on {device}"
            )
        if model.config.vocab_size != models[0].config.vocab_size:
            raise ValueError(
                f"model {k} has vocabulary {model.config.vocab_size}, "
                f"model 0 has {models[0].config.vocab_size}: logits cannot be combined"
            )
        n_positions = getattr(model.config, "n_positions", None) or getattr(
            model.config, "max_position_embeddings", None
        )
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
        seed: seeds one `torch.Generator`; the same arguments give the same texts. Texts depend
            on `batch_size` (the draws are consumed in batch order), greedy outputs do not.
        batch_size: sequences per forward pass (prompts × samples are flattened first).
        greedy: take the argmax instead of sampling (for checks against `generate`).
        top_k: candidates of the exact top-p prefilter (0: full sort); changes speed, not texts
            (up to float rounding at the nucleus boundary).
        compile: `torch.compile` the decode step; None compiles on CUDA only (on CPU it costs
            compile time and gains nothing at these sizes).

    Returns:
        One dict per sequence, ordered by prompt then sample: `prompt_index`, `sample_id`,
        `continuation` (decoded without special tokens), `n_new_tokens` (tokens generated, the
        final EOS included), `ended` (whether EOS was generated), `token_ids` (without EOS).
    """
    for name, value in [
        ("samples_per_prompt", samples_per_prompt),
        ("max_new_tokens", max_new_tokens),
        ("batch_size", batch_size),
    ]:
        if value < 1:
            raise ValueError(f"{name} must be ≥ 1, got {value}")
    _check_p("top_p", top_p)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token")
    prompt_ids = encode_prompts(prompts, tokenizer)
    if not prompt_ids:
        return []
    longest = max(map(len, prompt_ids))
    device = _check(models, longest, max_new_tokens)
    for model in models:
        model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    jobs = [(i, j) for i in range(len(prompts)) for j in range(samples_per_prompt)]
    jobs.sort(key=lambda job: len(prompt_ids[job[0]]))  # stable: ties keep prompt order
    if compile is None:
        compile = device.type == "cuda"
    rows = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        input_ids, attention_mask = left_pad([prompt_ids[i] for i, _ in chunk], eos)
        new = decode(
            models,
            combine,
            input_ids.to(device),
            attention_mask.to(device),
            max_new_tokens=max_new_tokens,
            top_p=top_p,
            generator=generator,
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
    return {
        "prompt_index": i,
        "sample_id": j,
        "continuation": text,
        "n_new_tokens": n_new,
        "ended": ended,
        "token_ids": kept,
    }


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
    rows = sample(models, combine, texts, tokenizer, **sampling)
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
