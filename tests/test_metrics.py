"""Scores: distinct-n, conditional perplexity, Harper grammar, next-token probabilities, norms."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from toy_text import TEXTS
from transformers import GPT2Config, GPT2LMHeadModel

from lmlerp.data import bpe as bpe_training
from lmlerp.score import perplexity
from lmlerp.score import text as text_scores
from lmlerp.space import norms
from lmlerp.train import batches as lm_batches
from lmlerp.train import loss as lm_loss
from lmlerp.train import pretrain

ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64}

PROMPTS = ["The movie", "A story", "This film was", "The plot", "Our critic felt", "The actor"]
CONTINUATIONS = [
    " was wonderful today.",
    " seemed slow",
    " dreadful and boring and slow and charming today.",
    " became moving",
    " charming.",
    " remained boring today, the movie was slow.",
]


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


@pytest.fixture(scope="module")
def model(bpe):
    return pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=0).eval()


# --- distinct-n -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        # words a b a b | a b c: 7 unigrams, unique {a, b, c}
        (1, 3 / 7),
        # bigrams ab ba ab | ab bc: 5, unique {ab, ba, bc}; DExperts would report 3/7
        (2, 3 / 5),
        # trigrams aba bab | abc: 3, all unique
        (3, 1.0),
        # abab | (none): 1
        (4, 1.0),
    ],
)
def test_distinct_n_by_hand(n, expected):
    assert text_scores.distinct_n(["a b a b", "a b c"], n) == pytest.approx(expected, abs=0)


def test_distinct_n_without_ngrams_is_nan_and_n_must_be_positive():
    assert math.isnan(text_scores.distinct_n(["a b a b", "a b c"], 5))
    assert math.isnan(text_scores.distinct_n([], 1))
    with pytest.raises(ValueError, match="n must be"):
        text_scores.distinct_n(["a"], 0)


def test_distinct_by_prompt_averages_over_prompts_not_samples():
    frame = pd.DataFrame(
        {
            "prompt_id": [0, 0, 1, 1, 1, 2],
            # prompt 0: 3/7; prompt 1: a a | a | a → 1/4; prompt 2: one word, no bigram
            "continuation": ["a b a b", "a b c", "a a", "a", "a", "x"],
        }
    )
    assert text_scores.distinct_by_prompt(frame, 1) == pytest.approx((3 / 7 + 1 / 4 + 1) / 3)
    # bigrams: prompt 0 → 3/5, prompt 1 → {aa} 1/1, prompt 2 → nan, left out
    assert text_scores.distinct_by_prompt(frame, 2) == pytest.approx((3 / 5 + 1) / 2)
    assert math.isnan(text_scores.distinct_by_prompt(frame, 9))


# --- conditional perplexity -----------------------------------------------------------------


def reference_perplexity(model, bpe, prompt: str, continuation: str) -> float:
    """One text at a time, no padding: exp of the mean −log p over continuation tokens."""
    context = [bpe.eos_token_id, *bpe.encode(prompt, add_special_tokens=False)]
    target = bpe.encode(continuation, add_special_tokens=False)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + target])).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.double(), -1)
    nll = [-logp[len(context) - 1 + t, token] for t, token in enumerate(target)]
    return math.exp(sum(nll) / len(target))


def test_conditional_perplexity_equals_one_text_at_a_time_reference(model, bpe):
    got = perplexity.conditional_perplexity(model, bpe, PROMPTS, CONTINUATIONS, batch_size=4)
    expected = [
        reference_perplexity(model, bpe, p, c) for p, c in zip(PROMPTS, CONTINUATIONS, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_conditional_perplexity_does_not_depend_on_batch_size(model, bpe):
    lengths = [len(bpe.encode(p + c)) for p, c in zip(PROMPTS, CONTINUATIONS, strict=True)]
    assert len(set(lengths)) > 3  # batches do pad
    runs = [
        perplexity.conditional_perplexity(model, bpe, PROMPTS, CONTINUATIONS, batch_size=b)
        for b in (1, 3, len(PROMPTS))
    ]
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5)
    np.testing.assert_allclose(runs[2], runs[0], rtol=1e-5)


def test_padding_never_counts(model, bpe):
    short = perplexity.conditional_perplexity(
        model, bpe, ["The plot"], [" seemed slow"], batch_size=1
    )
    long_text = " was slow" * 10
    both = perplexity.conditional_perplexity(
        model, bpe, ["The plot", "A story"], [" seemed slow", long_text], batch_size=2
    )
    np.testing.assert_allclose(both[0], short[0], rtol=1e-5)


def test_only_the_continuation_is_scored_but_the_prompt_conditions_it(model, bpe):
    continuation = " was wonderful today."
    a, b = perplexity.conditional_perplexity(
        model, bpe, ["The movie", "Our critic felt"], [continuation] * 2, batch_size=2
    )
    assert a != pytest.approx(b, rel=1e-3)  # the prompt is context
    # Scoring prompt tokens too would give the perplexity of the whole text instead.
    whole = reference_perplexity(model, bpe, "", "The movie" + continuation)
    assert a != pytest.approx(whole, rel=1e-3)
    assert a == pytest.approx(reference_perplexity(model, bpe, "The movie", continuation), 1e-5)


def test_prompt_and_continuation_are_tokenized_separately(model, bpe):
    # The joined string may tokenize differently; the value follows the separate encodings.
    prompt, continuation = "The mov", "ie was slow"
    got = perplexity.conditional_perplexity(model, bpe, [prompt], [continuation], batch_size=1)
    assert got[0] == pytest.approx(reference_perplexity(model, bpe, prompt, continuation), 1e-5)


def test_start_token_choice(model, bpe):
    args = (model, bpe, ["The movie"], [" was slow"])
    with_eos = perplexity.conditional_perplexity(*args, batch_size=1, bos=bpe.eos_token_id)
    default = perplexity.conditional_perplexity(*args, batch_size=1)
    without = perplexity.conditional_perplexity(*args, batch_size=1, bos=False)
    assert with_eos[0] == default[0]  # this tokenizer's BOS is its EOS
    assert without[0] != pytest.approx(default[0], rel=1e-4)


def test_empty_continuation_is_nan_and_missing_context_is_an_error(model, bpe):
    got = perplexity.conditional_perplexity(
        model, bpe, ["The movie", "A story"], ["", " was slow"], batch_size=2
    )
    assert math.isnan(got[0]) and np.isfinite(got[1])
    with pytest.raises(ValueError, match="text 0: empty prompt"):
        perplexity.conditional_perplexity(model, bpe, [""], [" slow"], batch_size=1, bos=False)
    with pytest.raises(ValueError, match="dtype 'float16' is not one of"):
        perplexity.conditional_perplexity(model, bpe, ["a"], ["b"], batch_size=1, dtype="float16")
    with pytest.raises(ValueError, match="1 prompts but 2"):
        perplexity.conditional_perplexity(model, bpe, ["a"], ["b", "c"], batch_size=1)
    with pytest.raises(ValueError, match=r"text 0: .* exceed the context of 64"):
        perplexity.conditional_perplexity(model, bpe, ["The"], [" slow" * 70], batch_size=1)


def test_bfloat16_autocast_stays_close_to_float32(model, bpe):
    fp32 = perplexity.conditional_perplexity(model, bpe, PROMPTS, CONTINUATIONS, batch_size=3)
    bf16 = perplexity.conditional_perplexity(
        model, bpe, PROMPTS, CONTINUATIONS, batch_size=3, dtype="bfloat16"
    )
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)


def test_mean_perplexity_leaves_out_empty_continuations_only():
    assert perplexity.mean_perplexity([2.0, math.nan, 4.0, 1e6]) == pytest.approx((2 + 4 + 1e6) / 3)
    assert math.isnan(perplexity.mean_perplexity([math.nan]))


# --- grammar (real Harper 0.2.0 outputs) ----------------------------------------------------


def test_harper_lint_kinds_of_hand_written_sentences():
    texts = ["This is a good sentence.", "I has a apple.", "The moive was terible."]
    assert text_scores.lint_kinds(texts) == [
        [],
        ["Agreement", "Miscellaneous"],
        ["Spelling", "Spelling"],
    ]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("This is a good sentence.", True),
        ("The film was very good.", True),  # Enhancement: "use `excellent`"
        ("The movie was funny, sad and long.", True),  # Style: Oxford comma
        ("The movie was boring.  It was long.", True),  # Formatting: two spaces
        ("The movie was great and also fun.", True),  # Redundancy: "and also"
        ("This are a bad sentences sentences .", True),  # Harper only sees the space before "."
        ("I has a apple.", False),  # Agreement, Miscellaneous
        ("He go to school yesterday.", False),  # Agreement
        ("The the film was good.", False),  # Repetition
        ("The moive was terible.", False),  # Spelling
        ("was movie the great the and", False),  # Capitalization
        ("", True),
    ],
)
def test_grammar_ok_ignores_style_lints_only(text, ok):
    assert text_scores.grammar_ok([text]).tolist() == [ok]


def test_grammar_score_is_the_share_of_clean_texts():
    texts = ["This is a good sentence.", "I has a apple.", "The moive was terible.", "Fine."]
    assert text_scores.grammar_score(texts) == pytest.approx(2 / 4)
    assert text_scores.grammar_score(texts, exclude=text_scores.STYLE_KINDS | {"Spelling"}) == 3 / 4
    assert text_scores.grammar_ok(texts).dtype == bool
    assert math.isnan(text_scores.grammar_score([]))


# --- next-token probabilities, sentence NLL ------------------------------------------------


def test_next_token_probabilities_are_the_softmax_at_the_last_prompt_position(model, bpe):
    words = ["wonderful", "boring", "charming", "dreadful", "zzz"]
    probs, n_tokens = perplexity.next_token_probabilities(model, bpe, "The movie was", words)
    ids = [bpe.eos_token_id, *bpe.encode("The movie was")]
    with torch.no_grad():
        softmax = model(input_ids=torch.tensor([ids])).logits[0, -1].softmax(-1)
    for word in words:
        encoded = bpe.encode(" " + word)
        assert n_tokens[word] == len(encoded)
        assert probs[word] == pytest.approx(float(softmax[encoded[0]]), rel=1e-6)
    assert n_tokens["zzz"] > 1  # not in the vocabulary: only its first token counts
    adjectives = words[:4]
    assert len({bpe.encode(" " + w)[0] for w in adjectives}) == 4  # distinct first tokens
    assert 0 < sum(probs[w] for w in adjectives) <= 1


def test_sentence_nll_is_the_loss_of_eos_sentence_eos(model, bpe):
    sentence = "The plot was slow today."
    ids = torch.tensor([[bpe.eos_token_id, *bpe.encode(sentence), bpe.eos_token_id]])
    with torch.no_grad():
        expected = model(input_ids=ids, labels=ids).loss.item()
    got = lm_loss.sentence_nll(model, bpe, [sentence], batch_size=4)
    assert got == pytest.approx(expected, rel=1e-5)
    several = lm_loss.sentence_nll(model, bpe, TEXTS[:7], batch_size=3)
    batch = lm_batches.pad(lm_batches.encode_sentences(bpe, TEXTS[:7]), 0, 64)
    assert several == pytest.approx(lm_loss.mean_nll(model, iter([batch])), rel=1e-6)


# --- weight-difference norms ---------------------------------------------------------------


def test_weight_difference_norms_by_hand():
    a = {
        "transformer.wte.weight": torch.zeros(2, 2),
        "transformer.h.3.attn.c_attn.weight": torch.zeros(1, 4),
        "transformer.h.10.ln_1.bias": torch.tensor([1.0, 2.0]),
        "transformer.h.0.attn.mask": torch.ones(2, dtype=torch.bool),  # not a weight: skipped
    }
    b = {
        "transformer.wte.weight": torch.full((2, 2), 3.0),  # √(4·9) / √4 = 3
        "transformer.h.3.attn.c_attn.weight": torch.tensor([[3.0, 4.0, 0.0, 0.0]]),  # 5 / 2
        "transformer.h.10.ln_1.bias": torch.tensor([1.0, 2.0]),  # 0
        "transformer.h.0.attn.mask": torch.zeros(2, dtype=torch.bool),
    }
    frame = norms.weight_difference_norms(a, b)
    assert frame.to_dict("list") == {
        "tensor": list(a)[:3],
        "layer": [-1, 3, 10],
        "kind": ["transformer.wte.weight", "attn.c_attn.weight", "ln_1.bias"],
        "value": [3.0, 2.5, 0.0],
    }


def test_weight_difference_norms_of_real_gpt2s_name_every_tensor(bpe):
    first = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=0).state_dict()
    second = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=1).state_dict()
    frame = norms.weight_difference_norms(first, second)
    assert list(frame.tensor) == [name for name in first if name != "lm_head.weight"]  # tied
    assert set(frame.layer) == {-1, 0, 1}
    weights = frame.tensor.str.endswith("weight") & ~frame.tensor.str.contains("ln_")
    assert (frame.value[weights] > 0).all()
    assert (frame.value[~weights] == 0).all()  # biases and layer norms start equal
    assert norms.weight_difference_norms(first, first).value.eq(0).all()


@pytest.mark.parametrize("tied", [True, False])
def test_weight_difference_norms_count_a_tied_tensor_once(bpe, tied):
    """GPT-2's lm_head is wte (tie_word_embeddings): one row, so the mean over rows counts it
    once; untied, both are compared."""
    config = GPT2Config(
        vocab_size=len(bpe), n_positions=32, n_embd=32, n_layer=2, n_head=2,
        tie_word_embeddings=tied,
    )  # fmt: skip
    torch.manual_seed(0)
    first = GPT2LMHeadModel(config).state_dict()
    torch.manual_seed(1)
    second = GPT2LMHeadModel(config).state_dict()
    assert "lm_head.weight" in first
    frame = norms.weight_difference_norms(first, second)
    assert ("lm_head.weight" in set(frame.tensor)) is not tied
    assert (frame.tensor == "transformer.wte.weight").sum() == 1
    assert len(frame) == len(list(GPT2LMHeadModel(config).parameters()))  # each parameter once


def test_weight_norms_job_compares_one_base_with_its_fine_tuning_and_with_theta_c4(bpe, tmp_path):
    """Fig 9's pairs share the base: (a) base vs tuned, (b) base vs θC4; the tie of lm_head and
    wte survives the save and load, so each pair has one row per parameter."""
    from lmlerp.io import checkpoints
    from lmlerp.space import tasks as space_tasks

    paths = {}
    for seed, name in enumerate(["base", "tuned", "theta_c4"]):
        paths[name] = tmp_path / name
        model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed)
        checkpoints.save(model, bpe, paths[name])
    out = tmp_path / "weight_norms.parquet"
    space_tasks.weight_norms(**paths, norms=out, base_name="θ0", tuned_name="θ+")
    table = pd.read_parquet(out)
    pairs = list(dict.fromkeys(table.pair))
    assert pairs == [
        "θ0 vs θ+ (fine-tuned on positive)", "θ0 vs θC4 (independent pretraining)"
    ]  # fmt: skip
    loaded = {name: checkpoints.load(path).state_dict() for name, path in paths.items()}
    expected = norms.weight_difference_norms(loaded["base"], loaded["tuned"])
    first = table[table.pair == pairs[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(first.drop(columns="pair"), expected)
    assert "lm_head.weight" not in set(table.tensor)
    assert len(first) == len(list(model.parameters()))


def test_weight_difference_norms_name_the_mismatch():
    a = {"transformer.h.0.mlp.c_fc.weight": torch.zeros(2, 3)}
    with pytest.raises(ValueError, match=r"transformer\.h\.0\.mlp\.c_fc\.weight.*\(2, 3\) vs"):
        norms.weight_difference_norms(a, {"transformer.h.0.mlp.c_fc.weight": torch.zeros(3, 2)})
    with pytest.raises(ValueError, match=r"lm_head\.weight"):
        norms.weight_difference_norms(a, {**a, "lm_head.weight": torch.zeros(1)})
