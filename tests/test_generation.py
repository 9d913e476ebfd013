"""The sampler: exact top-p, greedy agreement with HF `generate`, seeds, EOS, DExperts."""

import copy

import pandas as pd
import pytest
import torch
from toy_text import TEXTS
from transformers.generation.logits_process import TopPLogitsWarper

from lmlerp.data import bpe as bpe_training
from lmlerp.generate import combiners, nucleus, sampler
from lmlerp.io import tokenizer as tok
from lmlerp.train import pretrain

ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64}
PROMPTS = ["The movie", "A", "This film was really quite", "Our critic felt"]  # 1 to 5 tokens
NEG_INF = float("-inf")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


def tiny(bpe, seed):
    return pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed).eval()


@pytest.fixture(scope="module")
def model(bpe):
    return tiny(bpe, seed=0)


@pytest.fixture(scope="module")
def sharp(bpe):
    """A random GPT-2 with large weights: its greedy output depends on positions and padding.

    At the default initialisation (std 0.02) the tied embedding dominates and greedy decoding just
    repeats the last token, which would hide position bugs.
    """
    model = tiny(bpe, seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            is_gain = name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
            weight.copy_(torch.randn(weight.shape, generator=g) * 0.3 + is_gain)
    return model


def draw(models, combine, bpe, **overrides):
    settings = {
        "samples_per_prompt": 3,
        "max_new_tokens": 8,
        "top_p": 0.9,
        "seed": 1,
        "batch_size": 5,
    }
    return sampler.sample(models, combine, PROMPTS, bpe, **(settings | overrides))


def texts(rows):
    return [(r["prompt_index"], r["sample_id"], r["continuation"]) for r in rows]


# top-p --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "kept"),
    [(0.5, [1, 0, 0]), (0.8, [1, 1, 0]), (0.81, [1, 1, 1]), (1.0, [1, 1, 1]), (0.3, [1, 0, 0])],
)
def test_top_p_filter_keeps_the_smallest_set_reaching_p(p, kept):
    logits = torch.tensor([0.5, 0.3, 0.2]).log()
    filtered = nucleus.top_p_filter(logits, p)
    assert torch.isfinite(filtered).tolist() == [bool(k) for k in kept]
    torch.testing.assert_close(filtered[torch.isfinite(filtered)], logits[torch.tensor(kept) > 0])


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.1])
def test_top_p_filter_always_keeps_the_top_token(p):
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.9], [5.0, 0.0, 0.0, 0.0]])
    assert torch.isfinite(nucleus.top_p_filter(logits, p)).tolist() == [
        [False, True, False, False],
        [True, False, False, False],
    ]


def test_top_p_filter_breaks_ties_towards_lower_token_ids():
    logits = torch.zeros(2, 6)
    assert (
        torch.isfinite(nucleus.top_p_filter(logits, 0.4)).tolist()
        == [[True, True, True, False, False, False]] * 2
    )


def reference_top_p_keep(logits, p):
    """The nucleus by a full stable sort: the textbook algorithm, slow on CPU."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    keep = torch.cat([torch.zeros_like(cumulative[:, :1]), cumulative[:, :-1]], -1) < p
    keep[:, 0] = True
    return keep.scatter(-1, order, keep)


@pytest.mark.parametrize("top_k", [0, 3, 12, 40])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.6, 0.9, 0.95])
def test_top_p_filter_equals_a_full_stable_sort_even_with_ties(p, top_k):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(256, 50, generator=g) * 2).to(torch.bfloat16).float()  # many ties
    logits[:, 10:20] = 1.0  # a tied block that straddles the boundary in some rows
    kept = torch.isfinite(nucleus.top_p_filter(logits, p, top_k=top_k))
    assert torch.equal(kept, reference_top_p_keep(logits, p))


def spy_on_full_sort(monkeypatch):
    """Record the rows that `_nucleus` sends to the full sort."""
    seen = []
    full_sort = nucleus._sort_descending

    def spy(values):
        seen.append(values.clone())
        return full_sort(values)

    monkeypatch.setattr(nucleus, "_sort_descending", spy)
    return seen


def test_top_k_prefilter_falls_back_to_the_full_sort_where_the_top_k_mass_is_short_of_p(
    monkeypatch,
):
    g = torch.Generator().manual_seed(1)
    peaked = torch.randn(4, 200, generator=g) * 6  # nucleus of a few tokens
    flat = torch.randn(3, 200, generator=g) * 0.01  # top-8 mass ≈ 0.04 < p
    logits = torch.cat([peaked[:2], flat[:1], peaked[2:], flat[1:]])  # rows 2, 5, 6 are flat
    top8 = logits.softmax(-1).sort(-1, descending=True).values[:, :8].sum(-1)
    assert ((top8 < 0.9) == torch.tensor([0, 0, 1, 0, 0, 1, 1], dtype=torch.bool)).all()
    seen = spy_on_full_sort(monkeypatch)
    kept = torch.isfinite(nucleus.top_p_filter(logits, 0.9, top_k=8))
    assert torch.equal(kept, reference_top_p_keep(logits, 0.9))
    assert len(seen) == 1 and torch.equal(seen[0], logits.softmax(-1)[[2, 5, 6]])
    assert kept[[2, 5, 6]].sum(-1).min() > 8  # the nuclei of the flat rows exceed k


def test_top_k_prefilter_skips_the_full_sort_when_every_nucleus_fits(monkeypatch):
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(64, 300, generator=g) * 6
    seen = spy_on_full_sort(monkeypatch)
    kept = torch.isfinite(nucleus.top_p_filter(logits, 0.9, top_k=32))
    assert torch.equal(kept, reference_top_p_keep(logits, 0.9))
    assert seen == [] and kept.sum(-1).max() < 32


def test_top_k_prefilter_sends_a_tie_at_the_boundary_to_the_full_sort(monkeypatch):
    logits = torch.tensor([[0.4, 0.15, 0.15, 0.15, 0.15]]).log()  # 0.4 + 0.15 ≥ 0.5
    seen = spy_on_full_sort(monkeypatch)
    kept = torch.isfinite(nucleus.top_p_filter(logits, 0.5, top_k=3))
    assert kept.tolist() == [[True, True, False, False, False]]  # lowest id among the ties
    assert len(seen) == 1  # 3 tokens tie with τ but only 1 fits: not decidable from the top 3


def test_top_p_filter_agrees_with_hf_top_p_warper_on_random_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 500, generator=g) * 3  # (B, V), no ties
    for p in [0.05, 0.3, 0.5, 0.9, 0.99]:
        ours = nucleus.top_p_filter(logits, p)
        theirs = TopPLogitsWarper(top_p=p)(None, logits.clone())
        assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs)), p


@pytest.fixture
def fixed_point_sums(monkeypatch):
    """The running sums CUDA uses (int64 fixed point), on the CPU."""
    running_sum = nucleus._running_sum
    monkeypatch.setattr(
        nucleus, "_running_sum", lambda values: running_sum(values, fixed_point=True)
    )


def test_fixed_point_running_sums_match_float64_to_their_resolution():
    values = torch.rand(8, 1000, generator=torch.Generator().manual_seed(0)).softmax(-1)
    fixed = nucleus._running_sum(values, fixed_point=True)
    assert fixed.dtype == torch.float64
    assert (fixed - values.double().cumsum(-1)).abs().max() < 1000 / nucleus.FIXED_POINT


@pytest.mark.parametrize("top_k", [0, 12])
@pytest.mark.parametrize("p", [0.2, 0.9])
def test_top_p_filter_with_cuda_running_sums_equals_a_full_stable_sort(fixed_point_sums, p, top_k):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(256, 50, generator=g) * 2).to(torch.bfloat16).float()  # many ties
    logits[:, 10:20] = 1.0
    kept = torch.isfinite(nucleus.top_p_filter(logits, p, top_k=top_k))
    assert torch.equal(kept, reference_top_p_keep(logits, p))


@pytest.mark.parametrize("running_sums", ["float", "fixed_point"])
def test_bf16_logits_give_the_nucleus_of_their_float64_values(running_sums, request):
    """A model run in bf16 hands bf16 logits: softmax and running sums must be taken at full
    precision (a bf16 cumsum has 8 bits of mantissa: it reaches 0.9 tokens early or late)."""
    if running_sums == "fixed_point":
        request.getfixturevalue("fixed_point_sums")
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(64, 3000, generator=g) * 3).to(torch.bfloat16)
    kept = nucleus.top_p_filter(logits, 0.9, top_k=256) > NEG_INF
    probs = logits.double().softmax(-1)
    values, order = probs.sort(dim=-1, descending=True, stable=True)
    before = values.cumsum(-1) - values  # mass before each sorted token
    expected = torch.zeros_like(kept).scatter(-1, order, before < 0.9)
    assert torch.equal(kept, expected)
    bf16_cumsum = values.to(torch.bfloat16).cumsum(-1).double() - values  # the hazard avoided
    assert not torch.equal(torch.zeros_like(kept).scatter(-1, order, bf16_cumsum < 0.9), kept)


def test_top_p_filter_rejects_p_outside_unit_interval():
    with pytest.raises(ValueError, match="top-p"):
        nucleus.top_p_filter(torch.zeros(3), 1.5)


@pytest.mark.parametrize("running_sums", ["float", "fixed_point"])
@pytest.mark.parametrize(("top_p", "top_k"), [(0.9, 0), (0.9, 3), (0.9, 8), (0.5, 3), (None, 3)])
def test_next_token_draws_follow_the_renormalised_nucleus(top_p, top_k, running_sums, request):
    if running_sums == "fixed_point":
        request.getfixturevalue("fixed_point_sums")
    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -2.0, -3.0, NEG_INF])
    probs = logits.softmax(-1)
    kept = probs.cumsum(-1) - probs < (top_p or 1.0)  # sorted already: the mass before
    kept[-1] = False  # probability zero
    expected = torch.where(kept, probs, 0.0)
    expected /= expected.sum()
    n = 20_000
    g = torch.Generator().manual_seed(0)
    u = torch.rand((n, 1), generator=g)
    tokens = nucleus.next_token(logits.expand(n, -1), top_p, u, top_k=top_k)
    observed = torch.bincount(tokens, minlength=len(logits)).double() / n
    assert (observed[~kept] == 0).all()
    assert (observed - expected).abs().max() < 0.01  # 3 standard errors at p ≈ 0.3


@pytest.mark.parametrize("p", [0.0, 0.2, 0.6, 0.95])
def test_next_token_draws_only_from_top_p_filter_nucleus_even_with_ties(p):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(256, 50, generator=g) * 2).to(torch.bfloat16).float()  # many ties
    logits[:, 10:20] = 1.0  # a tied block that straddles the boundary in some rows
    tokens = nucleus.next_token(logits.repeat(20, 1), p, torch.rand((256 * 20, 1), generator=g))
    inside = torch.isfinite(nucleus.top_p_filter(logits, p)).repeat(20, 1)
    assert inside.gather(-1, tokens[:, None]).all()


# greedy agreement with HF generate ----------------------------------------------------------


def greedy_pair(model, input_ids, attention_mask, eos: int, **options):
    """(our greedy continuation, HF `generate`'s) of the same left-padded batch, 12 tokens."""
    ours = sampler.decode(
        [model],
        combiners.plain,
        input_ids,
        attention_mask,
        max_new_tokens=12,
        top_p=None,
        uniforms=None,
        eos_id=eos,
        greedy=True,
        **options,
    )
    theirs = model.generate(
        input_ids,
        attention_mask=attention_mask,
        do_sample=False,
        max_new_tokens=12,
        pad_token_id=eos,
    )[:, input_ids.shape[1] :]
    return ours, theirs


@pytest.mark.parametrize("eos_gain", [1.0, 2.5])
def test_greedy_decode_equals_hf_generate_on_a_left_padded_batch(sharp, bpe, eos_gain):
    eos = bpe.eos_token_id
    model = copy.deepcopy(sharp)
    with torch.no_grad():
        model.transformer.wte.weight[eos] *= eos_gain  # a larger EOS logit ends some rows early
    input_ids, attention_mask = sampler.left_pad(sampler.encode_prompts(PROMPTS, bpe), eos)
    assert attention_mask.sum(-1).unique().numel() == len(PROMPTS)  # lengths all differ
    ours, theirs = greedy_pair(model, input_ids, attention_mask, eos)
    assert torch.equal(ours, theirs)
    if eos_gain > 1:  # the case must exercise rows that end and rows that run to the limit
        assert 0 < (ours == eos).any(-1).sum() < len(PROMPTS)


@pytest.mark.cuda  # compiled decoding (CUDA graphs) needs CUDA
def test_compiled_greedy_decode_on_cuda_equals_hf_generate(sharp, bpe):
    model = copy.deepcopy(sharp).cuda()
    eos = bpe.eos_token_id
    input_ids, attention_mask = sampler.left_pad(sampler.encode_prompts(PROMPTS, bpe), eos)
    ours, theirs = greedy_pair(model, input_ids.cuda(), attention_mask.cuda(), eos, compile=True)
    assert torch.equal(ours, theirs)


def test_greedy_output_does_not_depend_on_batch_size(sharp, bpe):
    runs = [
        draw([sharp], combiners.plain, bpe, greedy=True, top_p=None, batch_size=b)
        for b in (1, 3, len(PROMPTS) * 3)
    ]
    tokens = [[r["token_ids"] for r in rows] for rows in runs]
    assert tokens[0] == tokens[1] == tokens[2]


# seeds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("combine", ["plain", "dexperts"])
def test_samples_do_not_depend_on_batching_nor_on_the_other_prompts(model, sharp, bpe, combine):
    """Each sequence draws from its own generator, seeded by (seed, prompt id, sample id)."""
    models, combine = (
        ([model], combiners.plain)
        if combine == "plain"
        else ([model, sharp, copy.deepcopy(model)], combiners.dexperts(0.5, 0.9))
    )
    runs = [draw(models, combine, bpe, batch_size=b) for b in (1, 4, len(PROMPTS) * 3)]
    assert texts(runs[0]) == texts(runs[1]) == texts(runs[2])
    last = sampler.sample(
        models, combine, PROMPTS[-1:], bpe, samples_per_prompt=3, max_new_tokens=8,
        top_p=0.9, seed=1, batch_size=2, prompt_ids=[len(PROMPTS) - 1],
    )  # fmt: skip
    alone = [c for i, _, c in texts(runs[0]) if i == len(PROMPTS) - 1]
    assert [r["continuation"] for r in last] == alone


def test_sequence_uniforms_are_a_function_of_the_sequence_alone():
    both = sampler.sequence_uniforms(7, [(3, 0), (3, 1)], 5)
    alone = sampler.sequence_uniforms(7, [(3, 1)], 5)
    assert both.shape == (2, 5) and torch.equal(both[1], alone[0])
    assert not torch.equal(both[0], both[1])
    assert not torch.equal(alone, sampler.sequence_uniforms(8, [(3, 1)], 5))


def test_same_seed_same_texts_other_seed_other_texts(model, bpe):
    first = draw([model], combiners.plain, bpe, seed=7)
    assert texts(first) == texts(draw([model], combiners.plain, bpe, seed=7))
    assert texts(first) != texts(draw([model], combiners.plain, bpe, seed=8))
    assert len({r["continuation"] for r in first}) > len(PROMPTS)  # samples of a prompt differ


def test_the_top_k_prefilter_changes_no_text(sharp, bpe, monkeypatch):
    seen = spy_on_full_sort(monkeypatch)
    prefiltered = draw([sharp], combiners.plain, bpe, top_k=100)
    fast_only = sum(len(v) for v in seen)
    assert texts(prefiltered) == texts(draw([sharp], combiners.plain, bpe, top_k=0))
    assert fast_only < sum(len(v) for v in seen) - fast_only  # the prefilter did decide rows


# EOS -------------------------------------------------------------------------------------------


def forcing_eos(eos, rows, at_call):
    """A combine that forbids EOS except for `rows` at the `at_call`-th step (0-based)."""
    calls = []

    def combine(logits_list):
        z = logits_list[0].clone()
        z[:, eos] = NEG_INF
        if len(calls) == at_call:
            z[rows] = NEG_INF
            z[rows, eos] = 0.0
        calls.append(1)
        return z

    return combine, calls


def test_eos_stops_only_its_row_and_is_not_in_the_text(model, bpe):
    combine, calls = forcing_eos(bpe.eos_token_id, rows=[1], at_call=3)
    rows = draw([model], combine, bpe, samples_per_prompt=1, batch_size=len(PROMPTS))
    # batch rows are in order of prompt length: row 1 holds the second shortest prompt
    ended = sorted(range(len(PROMPTS)), key=lambda i: len(bpe.encode(PROMPTS[i])))[1]
    assert [r["ended"] for r in rows] == [i == ended for i in range(len(PROMPTS))]
    assert [r["n_new_tokens"] for r in rows] == [4 if i == ended else 8 for i in range(4)]
    assert [len(r["token_ids"]) for r in rows] == [3 if i == ended else 8 for i in range(4)]
    assert rows[ended]["continuation"] == bpe.decode(rows[ended]["token_ids"])
    assert tok.EOS not in rows[ended]["continuation"]
    assert len(calls) == 8


@pytest.mark.parametrize("at_call", [1, 2, 5])
def test_loop_stops_soon_after_every_row_has_ended_and_trims_to_that_step(model, bpe, at_call):
    """The loop asks the device whether every row has ended every FINISHED_EVERY steps only (a
    host sync per token stalls a GPU), then cuts the all-EOS steps it ran in surplus."""
    eos = bpe.eos_token_id
    combine, calls = forcing_eos(eos, rows=slice(None), at_call=at_call)
    input_ids, attention_mask = sampler.left_pad(sampler.encode_prompts(PROMPTS, bpe), eos)
    uniforms = torch.rand(len(PROMPTS), 12, generator=torch.Generator().manual_seed(0))
    new = sampler.decode(
        [model], combine, input_ids, attention_mask, max_new_tokens=12, top_p=0.9,
        uniforms=uniforms, eos_id=eos,
    )  # fmt: skip
    every = sampler.FINISHED_EVERY
    assert len(calls) == (at_call // every + 1) * every  # the first check after the last EOS
    assert new.shape == (len(PROMPTS), at_call + 1)  # what a check at every step returns
    assert (new[:, -1] == eos).all() and not (new[:, :-1] == eos).any()
    rows = draw(
        [model], forcing_eos(eos, slice(None), at_call)[0], bpe, samples_per_prompt=2, batch_size=8
    )

    assert all(r["ended"] and r["n_new_tokens"] == at_call + 1 for r in rows)


def test_rows_that_never_end_keep_every_step(model, bpe):
    eos = bpe.eos_token_id
    combine, calls = forcing_eos(eos, rows=[0], at_call=1)  # only row 0 ends
    input_ids, attention_mask = sampler.left_pad(sampler.encode_prompts(PROMPTS, bpe), eos)
    new = sampler.decode(
        [model], combine, input_ids, attention_mask, max_new_tokens=6, top_p=None,
        uniforms=torch.full((len(PROMPTS), 6), 0.5), eos_id=eos,
    )  # fmt: skip
    assert new.shape == (len(PROMPTS), 6) and len(calls) == 6
    assert (new[0, 1:] == eos).all() and not (new[1:] == eos).any()


# DExperts ------------------------------------------------------------------------------------


def test_dexperts_combines_logits_as_in_the_paper():
    z0 = torch.tensor([[0.5, 0.3, 0.2]]).log()
    z_pos = torch.tensor([[1.0, 2.0, 3.0]])
    z_neg = torch.tensor([[3.0, 1.0, 0.0]])
    torch.testing.assert_close(
        combiners.dexperts(2.0)([z0, z_pos, z_neg]), z0 + 2.0 * (z_pos - z_neg)
    )
    filtered = combiners.dexperts(2.0, filter_p=0.8)([z0, z_pos, z_neg])
    torch.testing.assert_close(filtered[:, :2], z0[:, :2] + 2.0 * torch.tensor([[-2.0, 1.0]]))
    assert filtered[0, 2] == NEG_INF  # outside the base's nucleus, whatever the experts say


def test_dexperts_needs_three_models():
    with pytest.raises(ValueError, match="3 models"):
        combiners.dexperts(1.0)([torch.zeros(1, 3)])


def test_dexperts_with_alpha_zero_samples_like_the_base_model(model, bpe):
    experts = [tiny(bpe, seed=1), tiny(bpe, seed=2)]
    ensemble = draw([model, *experts], combiners.dexperts(0.0), bpe)
    assert texts(ensemble) == texts(draw([model], combiners.plain, bpe))
    shifted = draw([model, *experts], combiners.dexperts(5.0), bpe)
    assert texts(shifted) != texts(ensemble)


def test_dexperts_at_alpha_zero_is_nucleus_sampling_from_the_base(model, bpe):
    """DExperts' code: z0 cut to its filter_p nucleus, the ensemble then sampled whole (top_p 1),
    so that α = 0 is θ0 with nucleus filter_p — the point g2(α' = 0) of Fig 6."""
    experts = [tiny(bpe, seed=1), tiny(bpe, seed=2)]
    dexperts = draw([model, *experts], combiners.dexperts(0.0, filter_p=0.9), bpe, top_p=1.0)
    nucleus = draw([model], combiners.plain, bpe, top_p=0.9)
    assert texts(dexperts) == texts(nucleus)
    # truncating twice (the ensemble cut again at 0.9) samples a narrower distribution
    twice = draw([model, *experts], combiners.dexperts(0.0, filter_p=0.9), bpe, top_p=0.5)
    assert texts(twice) != texts(nucleus)


# the table and the checks ---------------------------------------------------------------------


def test_generate_table_has_one_row_per_sample_with_prompt_ids(model, bpe):
    prompts = pd.DataFrame({"prompt_id": ["p-a", "p-b"], "text": PROMPTS[:2], "kind": "x"})
    table = sampler.generate_table(
        [model],
        combiners.plain,
        prompts,
        bpe,
        samples_per_prompt=3,
        max_new_tokens=5,
        top_p=0.9,
        seed=0,
        batch_size=4,
    )
    assert list(table.columns) == sampler.TABLE_COLUMNS
    assert table.prompt_id.tolist() == ["p-a"] * 3 + ["p-b"] * 3
    assert table.sample_id.tolist() == [0, 1, 2] * 2
    assert table.prompt.tolist() == [PROMPTS[0]] * 3 + [PROMPTS[1]] * 3
    assert table.n_new_tokens.between(1, 5).all()


def test_generate_table_names_missing_columns(model, bpe):
    with pytest.raises(ValueError, match="prompt_id"):
        sampler.generate_table([model], combiners.plain, pd.DataFrame({"text": ["a"]}), bpe, **{})


def test_sample_fails_early_on_mismatched_vocabularies(model, bpe):
    other = pretrain.gpt2(len(bpe) + 1, bpe.eos_token_id, ARCH, 0)
    with pytest.raises(ValueError, match="vocabulary"):
        draw([model, other, model], combiners.dexperts(1.0), bpe)


def test_sample_fails_early_when_positions_run_out(model, bpe):
    with pytest.raises(ValueError, match="64 positions"):
        draw([model], combiners.plain, bpe, max_new_tokens=60)
