"""The scores of Rofin et al. 2022 (https://arxiv.org/abs/2211.12092), as small pure functions.

- diversity: distinct-n (Li et al. 2016), per prompt then averaged over prompts;
- fluency: perplexity of a continuation conditional on its prompt under a judge LM, and a
  grammar score from the Harper checker (the paper uses a RoBERTa fine-tuned on CoLA);
- the model itself: next-token probabilities of chosen words (Fig 4), test-set NLL (Fig 8) and
  per-tensor weight-difference norms (Fig 9).

The positive score (Eq. 6) lives with its classifier, `lmlerp.judge.SentimentJudge`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlerp import training

# --- diversity ------------------------------------------------------------------------------


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n of one prompt's samples: |unique n-grams| / |n-grams| (Li et al. 2016).

    Tokens are whitespace-separated words (`str.split()`), so punctuation stays attached to its
    word. n-grams never cross from one sample into the next; uniqueness is counted over all
    samples together. The denominator is the number of n-grams, not of words: the DExperts code
    (Liu et al. 2021) divides every distinct-n by the word count, which for n > 1 gives smaller
    values than the definition (3/7 instead of 3/5 for bigrams of ["a b a b", "a b c"]).

    Returns:
        A value in (0, 1], or nan when the samples hold no n-gram at all.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [
        tuple(words[i : i + n])
        for words in (text.split() for text in texts)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else math.nan


def distinct_by_prompt(frame: pd.DataFrame, n: int) -> float:
    """Mean over prompts of `distinct_n` of each prompt's samples (columns prompt_id, continuation).

    Prompts whose samples hold no n-gram (nan) are left out of the mean; nan if all are.
    """
    per_prompt = frame.groupby("prompt_id")["continuation"].agg(lambda s: distinct_n(list(s), n))
    return float(per_prompt.mean()) if per_prompt.notna().any() else math.nan


# --- perplexity -----------------------------------------------------------------------------


AUTOCAST_DTYPES = ("float32", "bfloat16")


def _start_ids(tokenizer: PreTrainedTokenizerBase, bos: bool | int) -> list[int]:
    """The id prefixed to every text: none, the tokenizer's BOS (else EOS), or a given id."""
    if bos is False:
        return []
    if bos is True:
        token = tokenizer.bos_token_id
        token = tokenizer.eos_token_id if token is None else token
        if token is None:
            raise ValueError("bos=True but the tokenizer has neither a BOS nor an EOS token")
        return [token]
    return [int(bos)]


def _context_limit(model: PreTrainedModel) -> int | None:
    config = model.config
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def conditional_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    continuations: Sequence[str],
    *,
    batch_size: int,
    device: str = "cpu",
    dtype: str = "float32",
    bos: bool | int = True,
) -> np.ndarray:
    """Perplexity of each continuation y given its prompt x under a (judge) causal LM.

        PPL(y | x) = exp(−(1/|y|) Σ_{t=1}^{|y|} log p(y_t | s, x, y_<t))

    where s is the optional start token. Prompt and continuation are tokenized separately and
    their ids concatenated, because BPE of the joined string is not always prefix-stable; the
    continuation is taken as generated (with its leading space), no separator is inserted.
    Only continuation tokens are scored: the prompt is context, padding is masked out of
    attention and loss. Texts are sorted by length for batching (less padding) and returned in
    input order; the values do not depend on `batch_size` (up to float rounding).

    Args:
        prompts, continuations: paired texts.
        batch_size: texts per forward pass.
        device: where the model runs (it is moved there).
        dtype: "float32", or "bfloat16" for autocast (a model loaded in bf16 runs in bf16
            either way); log-softmax is always taken in float32.
        bos: True prefixes `tokenizer.bos_token_id` (EOS when there is no BOS: GPT-2 and our
            models start texts with EOS); False prefixes nothing; an int prefixes that id (a
            judge whose BOS is a chat marker, e.g. SmolLM2-Instruct's <|im_start|>, may be better
            served by its <|endoftext|>).

    Returns:
        (N,) float64 perplexities; nan for an empty continuation (no token to score).

    Raises:
        ValueError: lengths differ, a text has no context (empty prompt and no start token),
            or a text exceeds the model's context window (the error names its index).
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if dtype not in AUTOCAST_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {AUTOCAST_DTYPES}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    start = _start_ids(tokenizer, bos)
    context = [start + ids for ids in _encode(tokenizer, prompts)]
    targets = _encode(tokenizer, continuations)
    limit = _context_limit(model)
    for i, (c, y) in enumerate(zip(context, targets, strict=True)):
        if y and not c:
            raise ValueError(f"text {i}: empty prompt and bos=False leave y_1 without context")
        if limit is not None and len(c) + len(y) > limit:
            raise ValueError(f"text {i}: {len(c) + len(y)} tokens exceed the context of {limit}")
    scored = [i for i, y in enumerate(targets) if y]
    scored.sort(key=lambda i: len(context[i]) + len(targets[i]), reverse=True)  # longest first
    ppl = np.full(len(prompts), math.nan)
    pad_id = _pad_id(tokenizer)
    model.to(device).eval()
    for b in range(0, len(scored), batch_size):
        rows = scored[b : b + batch_size]
        nll = _continuation_nll(
            model,
            [context[i] for i in rows],
            [targets[i] for i in rows],
            pad_id,
            device,
            dtype,
        )
        ppl[rows] = np.exp(nll)
    return ppl


def _encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Any id will do (padding is masked); prefer the tokenizer's own."""
    for token in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token is not None:
            return token
    return 0


@torch.no_grad()
def _continuation_nll(
    model: PreTrainedModel,
    context: Sequence[list[int]],
    targets: Sequence[list[int]],
    pad_id: int,
    device: str,
    dtype: str,
) -> np.ndarray:
    """Mean NLL per continuation token, one value per row of a right-padded batch."""
    sequences = [c + y for c, y in zip(context, targets, strict=True)]
    ids, mask, labels = training.pad(sequences, pad_id, max(map(len, sequences)))  # (B, T)
    for row, c in enumerate(context):
        labels[row, : len(c)] = -100  # the prompt is context, never scored
    with training._autocast(device, dtype):
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    logits = logits[:, :-1]  # (B, T-1, V); token t is predicted at position t-1
    shifted = labels[:, 1:].to(device)  # (B, T-1)
    scored = shifted != -100
    # log p(y_t) = z_t[y_t] − logsumexp(z_t), in float32 even when the model runs in bf16
    target_logit = logits.gather(-1, shifted.clamp(min=0).unsqueeze(-1)).squeeze(-1).float()
    token_logp = target_logit - logits.float().logsumexp(-1)  # (B, T-1)
    total = torch.where(scored, token_logp, 0.0).sum(1, dtype=torch.float64)  # (B,)
    counts = torch.tensor([len(y) for y in targets], dtype=torch.float64, device=device)
    return (-total / counts).cpu().numpy()


def mean_perplexity(perplexities: Iterable[float]) -> float:
    """Arithmetic mean of per-text perplexities, empty continuations (nan) left out.

    No outlier is dropped (DExperts silently drops PPL ≥ 1e4); nan if nothing is left.
    """
    values = np.asarray(list(perplexities), dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


# --- grammar --------------------------------------------------------------------------------

# Harper 0.2.0 lint kinds (`Lint.lint_kind`) that judge style, not grammar. Kinds seen on 4,000
# Rotten Tomatoes snippets (Hutto & Gilbert 2014) and on shuffled / mangled copies of them:
# Agreement, Capitalization, Eggcorn, Enhancement, Formatting, Grammar, Miscellaneous,
# Punctuation, Readability, Redundancy, Repetition, Spelling, Style, Typo, Usage, WordChoice.
# Excluded, with what they flagged there:
#   Style        — Oxford comma, "thru", "pretty decent"
#   Formatting   — "..." instead of "…", repeated or trailing spaces
#   Readability  — "This sentence is 41 words long."
#   Enhancement  — "use `excellent` instead of `very good`"
#   Redundancy   — "and also", "all of the"
#   Regionalism  — dialect variants (colour/color); not seen, excluded by its definition
# Spelling is counted: it flags non-words (the word salad of a broken model) but also names and
# rare words, so only 66% of those human snippets pass (92% if Spelling were also excluded).
STYLE_KINDS = frozenset(
    {"Style", "Formatting", "Readability", "Enhancement", "Redundancy", "Regionalism"}
)


@functools.cache
def _linter():
    import harper  # imported lazily: building the linter takes ≈0.8 s

    return harper.Linter()


def lint_kinds(texts: Sequence[str]) -> list[list[str]]:
    """The `lint_kind` of every Harper lint of every text (American English, plain text)."""
    linter = _linter()
    return [[lint.lint_kind for lint in linter.lint(text)] for text in texts]


def grammar_ok(texts: Sequence[str], exclude: Iterable[str] = STYLE_KINDS) -> np.ndarray:
    """(N,) bool: True where Harper reports no lint outside `exclude` (an empty text passes).

    Harper is a rule-based checker, not an acceptability model: it misses much (it accepts
    "This are a bad sentences sentences ." but for a trailing space), so pair it with perplexity.
    """
    excluded = frozenset(exclude)
    return np.array([all(k in excluded for k in kinds) for kinds in lint_kinds(texts)], dtype=bool)


def grammar_score(texts: Sequence[str], exclude: Iterable[str] = STYLE_KINDS) -> float:
    """Share of texts with no non-style Harper lint: (1/N) Σ_i 1[grammar_ok(text_i)]."""
    return float(grammar_ok(texts, exclude).mean()) if len(texts) else math.nan


# --- the model itself -----------------------------------------------------------------------


@torch.no_grad()
def next_token_probabilities(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    words: Sequence[str],
    *,
    bos: bool | int = True,
) -> tuple[dict[str, float], dict[str, int]]:
    """P(first token of " word" | prompt) for each word, as in the paper's Fig 4 ("The movie was").

    A word is encoded with a leading space, as it would follow the prompt (which should not end
    in a space). A word of several tokens is represented by its first token only, so its
    probability is an upper bound of the word's; words that share a first token get the same
    value, and only words with distinct first tokens sum to at most 1.

    Returns:
        (probabilities, number of tokens of " word") keyed by word.
    """
    ids = _start_ids(tokenizer, bos) + tokenizer.encode(prompt, add_special_tokens=False)
    if not ids:
        raise ValueError("empty prompt and bos=False: nothing to condition on")
    model.eval()
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1]  # (V,)
    probs = logits.float().softmax(-1)
    encoded = {w: tokenizer.encode(" " + w, add_special_tokens=False) for w in words}
    return (
        {w: float(probs[e[0]]) for w, e in encoded.items()},
        {w: len(e) for w, e in encoded.items()},
    )


def sentence_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int,
    device: str = "cpu",
) -> float:
    """Mean NLL per token of [EOS] + sentence + [EOS] over test sentences (the paper's Fig 8).

    The first EOS is context only; the closing EOS is scored. Same encoding and the same cut at
    the model's context length as fine-tuning (`training.encode_sentences`), so the value is
    comparable with the validation loss.
    """
    sequences = training.encode_sentences(tokenizer, texts)
    longest = max(map(len, sequences), default=0)
    limit = _context_limit(model)
    if limit is not None:  # cut at the context length, exactly as fine-tuning's validation does
        longest = min(longest, limit)
    return training.sentence_nll(model, sequences, _pad_id(tokenizer), longest, device, batch_size)


_BLOCK = re.compile(r"^(?:.*\.)?(?:h|layers|layer|blocks)\.(\d+)\.(.+)$")


def weight_difference_norms(
    state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor]
) -> pd.DataFrame:
    """Per-tensor RMS difference ‖w_a − w_b‖₂ / √numel(w) (the paper's Fig 9), in float64.

    Dividing by √numel makes tensors of different sizes comparable: it is the root mean square
    of the element-wise difference. Tensors keep their checkpoint names; a name such as
    `transformer.h.3.attn.c_attn.weight` gives layer 3 and kind `attn.c_attn.weight` (also
    `layers.N` / `blocks.N` of other architectures); other tensors get layer −1 and their full
    name as kind. Non-float tensors (buffers, masks) are skipped.

    Returns:
        One row per tensor, columns tensor, layer, kind, value, in state_a's order.

    Raises:
        ValueError: the tensor names differ, or a tensor's shapes do (the error names it).
    """
    missing = sorted(set(state_a) ^ set(state_b))
    if missing:
        raise ValueError(f"state dicts differ in tensors: {missing[:5]}")
    rows = []
    for name, a in state_a.items():
        b = state_b[name]
        if a.shape != b.shape:
            raise ValueError(f"tensor '{name}': shape {tuple(a.shape)} vs {tuple(b.shape)}")
        if not a.is_floating_point() or a.numel() == 0:
            continue
        diff = a.detach().cpu().double() - b.detach().cpu().double()
        match = _BLOCK.match(name)
        layer, kind = (int(match[1]), match[2]) if match else (-1, name)
        value = float(diff.norm() / math.sqrt(a.numel()))
        rows.append({"tensor": name, "layer": layer, "kind": kind, "value": value})
    return pd.DataFrame(rows, columns=["tensor", "layer", "kind", "value"])
