"""Training loops: lr schedules, batching, padding-free NLL, determinism, divergence checks."""

import itertools
import math

import numpy as np
import pytest
import torch
from toy_text import TEXTS

from lmlerp import jobs
from lmlerp.data import bpe as bpe_training
from lmlerp.train import batches as lm_batches
from lmlerp.train import loop, pretrain, schedules
from lmlerp.train import loss as lm_loss

ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


def tiny_model(bpe, seed: int = 0):
    return pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed)


@pytest.fixture
def restore_torch_settings():
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(strict)


# --- schedules ----------------------------------------------------------------------------


def test_cosine_schedule_warms_up_linearly_then_decays_to_min_ratio():
    warmup, total, floor = 10, 100, 0.1
    values = [schedules.cosine_schedule(s, warmup, total, floor) for s in range(total + 5)]
    assert values[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    assert values[warmup - 1] == 1.0 and values[warmup] == 1.0
    assert values[total] == pytest.approx(floor)
    assert values[total + 4] == pytest.approx(floor)  # flat after the budget
    after = values[warmup:]
    assert all(b <= a for a, b in itertools.pairwise(after))
    midpoint = warmup + (total - warmup) // 2
    assert values[midpoint] == pytest.approx(floor + (1 - floor) / 2)


def test_cosine_schedule_without_warmup_starts_at_the_peak():
    assert schedules.cosine_schedule(0, 0, 50, 0.0) == 1.0
    assert schedules.cosine_schedule(50, 0, 50, 0.0) == pytest.approx(0.0)


def test_linear_schedule_warms_up_then_reaches_zero_at_total():
    warmup, total = 4, 20
    values = [schedules.linear_schedule(s, warmup, total) for s in range(total + 3)]
    assert values[:warmup] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[warmup] == 1.0
    assert values[total] == 0.0 and values[total + 2] == 0.0
    assert values[warmup + 8] == pytest.approx(0.5)
    assert all(b <= a for a, b in itertools.pairwise(values[warmup:]))


# --- token streams and batches ------------------------------------------------------------


def test_block_batches_are_contiguous_windows_of_the_stream():
    stream = np.arange(100, 200, dtype=np.uint16)  # every window is identified by its first token
    batches = lm_batches.block_batches(stream, batch_size=4, block_size=8, seed=0)
    for ids, mask, labels in itertools.islice(batches, 5):
        assert ids.shape == mask.shape == labels.shape == (4, 8)
        assert bool((mask == 1).all())
        assert torch.equal(labels, ids)
        for row in ids:
            start = int(row[0]) - 100
            assert ids.dtype == torch.long and row.tolist() == stream[start : start + 8].tolist()


def test_block_batches_are_seeded():
    stream = np.arange(500)

    def firsts(seed):
        batches = lm_batches.block_batches(stream, 4, 8, seed)
        return torch.stack([ids for ids, _, _ in itertools.islice(batches, 3)])

    assert torch.equal(firsts(1), firsts(1))
    assert not torch.equal(firsts(1), firsts(2))


def test_block_batches_refuse_a_stream_shorter_than_a_block():
    with pytest.raises(ValueError, match="8 tokens is shorter than a block"):
        next(lm_batches.block_batches(np.arange(8), 2, 8, seed=0))


def test_pad_masks_exactly_the_padding_and_cuts_at_max_len():
    ids, mask, labels = lm_batches.pad([[5, 6, 7], [8], [9, 10, 11, 12, 13]], pad_id=0, max_len=4)
    assert ids.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [9, 10, 11, 12]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    assert labels.tolist() == [[5, 6, 7, -100], [8, -100, -100, -100], [9, 10, 11, 12]]


def test_pad_keeps_a_real_token_equal_to_pad_id():
    ids, mask, labels = lm_batches.pad([[3, 0, 3], [3]], pad_id=0, max_len=10)
    assert ids.tolist() == [[3, 0, 3], [3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert labels.tolist() == [[3, 0, 3], [3, -100, -100]]


def unique_sequences(n: int) -> list[list[int]]:
    """Sentence i starts with token i + 1 and has 1 + i % 7 tokens."""
    return [[i + 1] * (1 + i % 7) for i in range(n)]


def test_sentence_batches_cover_each_sentence_at_most_once_per_epoch():
    sequences, batch_size = unique_sequences(50), 4
    batches = lm_batches.sentence_batches(sequences, batch_size, pad_id=0, max_len=16, seed=0)
    epoch = list(itertools.islice(batches, 50 // batch_size))
    seen = []
    for ids, mask, _ in epoch:
        assert ids.shape[0] == batch_size
        for row, row_mask in zip(ids, mask, strict=True):
            sentence = row[row_mask.bool()].tolist()
            assert sentence == sequences[sentence[0] - 1]
            seen.append(sentence[0])
    assert len(seen) == len(set(seen)) == 48  # the ragged tail of 2 is dropped


def test_sentence_batches_are_seeded():
    sequences = unique_sequences(40)

    def draw(seed):
        batches = lm_batches.sentence_batches(sequences, 4, 0, 16, seed)
        return [ids.tolist() for ids, _, _ in itertools.islice(batches, 25)]  # into epoch 3

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_sentence_batches_refuse_fewer_sentences_than_one_batch():
    with pytest.raises(ValueError, match="3 sentences cannot fill one batch of 4"):
        next(lm_batches.sentence_batches(unique_sequences(3), 4, 0, 16, seed=0))


def near_duplicate_share(batches, epochs: int, per_epoch: int) -> float:
    """Share of batches that share over half their sentences with a batch of an earlier epoch."""
    drawn = [
        frozenset(ids[:, 0].tolist()) for ids, _, _ in itertools.islice(batches, epochs * per_epoch)
    ]
    repeated = 0
    for k, batch in enumerate(drawn[per_epoch:], start=per_epoch):
        earlier = drawn[: k - k % per_epoch]
        repeated += any(len(batch & other) > len(batch) / 2 for other in earlier)
    return repeated / (len(drawn) - per_epoch)


@pytest.mark.parametrize(("pool_size", "random"), [(1024, True), (16 * 256, False)])
def test_sentence_batches_stay_random_draws_at_the_paper_class_size(pool_size, random):
    """An SST-5 class (≈3,300 training sentences of 3–50 tokens) in batches of 256: a pool of
    1,024 sentences (configs/paper.yaml) gives new batches every epoch; the old pool of 16
    batches (4,096, the whole class) sorts each epoch by length and cuts nearly the same batches
    again."""
    n, batch_size = 3300, 256
    sequences = [[i + 1] * (3 + (i * 37) % 48) for i in range(n)]
    batches = lm_batches.sentence_batches(sequences, batch_size, 0, 64, seed=0, pool_size=pool_size)
    share = near_duplicate_share(batches, epochs=5, per_epoch=n // batch_size)
    assert (share <= 0.1) if random else (share >= 0.9), share


def test_sentence_batches_pool_rounds_to_whole_batches():
    """A pool below one batch still makes whole batches (one per pool), each length-sorted."""
    sequences = unique_sequences(40)
    for ids, mask, _ in itertools.islice(
        lm_batches.sentence_batches(sequences, 8, 0, 16, 0, 3), 10
    ):
        assert ids.shape[0] == 8
        assert mask.sum(1).tolist() == sorted(mask.sum(1).tolist())


# --- evaluation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(bpe):
    return tiny_model(bpe, seed=1).eval()


def test_sentence_nll_does_not_depend_on_batch_size(bpe, model):
    sequences = lm_batches.encode_sentences(bpe, TEXTS[::7])
    assert len({len(s) for s in sequences}) > 1  # batches of several sizes hold padding
    eos = bpe.eos_token_id
    texts = TEXTS[::7]
    values = [
        lm_loss.sentence_nll(model, bpe, texts, max_length=32, batch_size=b) for b in (1, 3, 64)
    ]
    assert values[1] == pytest.approx(values[0], rel=1e-5)
    assert values[2] == pytest.approx(values[0], rel=1e-5)
    ordered = sorted(sequences, key=len)  # padding with another id changes nothing
    other_pad = [lm_batches.pad(ordered[i : i + 3], 7, 32) for i in range(0, len(ordered), 3)]
    assert lm_loss.mean_nll(model, iter(other_pad)) == pytest.approx(values[0], rel=1e-5)
    assert eos != 7


def test_mean_nll_is_the_token_weighted_causal_lm_loss(bpe, model):
    sequences = lm_batches.encode_sentences(bpe, TEXTS[:3])
    total, count = 0.0, 0
    with torch.no_grad():
        for seq in sequences:
            ids = torch.tensor([seq])
            total += model(input_ids=ids, labels=ids).loss.item() * (len(seq) - 1)
            count += len(seq) - 1
    batch = lm_batches.pad(sequences, bpe.eos_token_id, 32)
    assert lm_loss.mean_nll(model, iter([batch])) == pytest.approx(total / count, rel=1e-5)
    assert math.isclose(
        lm_loss.sentence_nll(model, bpe, TEXTS[:3], max_length=32), total / count, rel_tol=1e-5
    )


def test_mean_nll_hands_the_loss_rows_not_a_2d_map(bpe, model, monkeypatch):
    """(B, V, T) logits would run `nll_loss2d`, which raises on CUDA under deterministic
    algorithms (it has no deterministic kernel): the loss must see (N, V) rows."""
    shapes, cross_entropy = [], torch.nn.functional.cross_entropy

    def spy(logits, targets, **kwargs):
        shapes.append((logits.dim(), targets.dim()))
        return cross_entropy(logits, targets, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)
    batch = lm_batches.pad(lm_batches.encode_sentences(bpe, TEXTS[:3]), bpe.eos_token_id, 32)
    lm_loss.mean_nll(model, iter([batch, batch]))
    assert shapes == [(2, 1), (2, 1)]


def test_mean_nll_refuses_batches_without_tokens(model):
    with pytest.raises(ValueError, match="no tokens to evaluate"):
        lm_loss.mean_nll(model, iter([]))


def test_stream_windows_cover_the_first_max_tokens_without_overlap():
    stream = np.arange(1, 101)
    batches = list(lm_batches.stream_windows(stream, block_size=8, max_tokens=50, batch_size=4))
    tokens = torch.cat([ids[mask.bool()] for ids, mask, _ in batches])
    assert tokens.tolist() == stream[:50].tolist()
    assert all(ids.shape[1] <= 8 and ids.shape[0] <= 4 for ids, _, _ in batches)


# --- training -----------------------------------------------------------------------------


def sentence_stream(bpe, seed: int = 0):
    return lm_batches.sentence_batches(
        lm_batches.encode_sentences(bpe, TEXTS), 8, bpe.eos_token_id, 32, seed
    )


def test_train_reduces_the_loss_on_a_repeated_batch(bpe):
    model = tiny_model(bpe)
    batch = next(sentence_stream(bpe))
    before = lm_loss.mean_nll(model, iter([batch]))
    opt = loop.Optimisation(lr=1e-2, steps=30, weight_decay=0.0)
    history = loop.train(
        model, itertools.repeat(batch), opt, lambda s: schedules.linear_schedule(s, 3, 30)
    )
    assert history.columns.tolist() == ["step", "lr", "loss"]
    assert history.step.tolist() == list(range(30))
    assert history.lr.iloc[0] == pytest.approx(1e-2 / 3)
    assert history.lr.iloc[2] == pytest.approx(1e-2)
    assert history.loss.iloc[0] == pytest.approx(before, rel=1e-4)
    after = lm_loss.mean_nll(model, iter([batch]))
    assert after < 0.5 * before
    assert not model.training
    assert loop.summary(history)["final_train_loss"] == pytest.approx(history.loss.iloc[-3:].mean())


def test_train_is_bitwise_deterministic(bpe, restore_torch_settings):
    jobs.deterministic(1)

    def run():
        model = tiny_model(bpe, seed=5)
        opt = loop.Optimisation(lr=3e-3, steps=8, weight_decay=0.01)
        loop.train(model, sentence_stream(bpe, seed=5), opt, lambda s: 1.0)
        return model.state_dict()

    first, second = run(), run()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert not torch.equal(
        first["transformer.h.0.mlp.c_fc.weight"],
        tiny_model(bpe, 5).state_dict()["transformer.h.0.mlp.c_fc.weight"],
    )


def test_train_stops_on_a_nan_loss(bpe):
    model = tiny_model(bpe)
    with torch.no_grad():
        model.transformer.wte.weight[bpe.eos_token_id, 0] = float("nan")
    opt = loop.Optimisation(lr=1e-3, steps=5, weight_decay=0.0)
    with pytest.raises(FloatingPointError, match=r"finetune: loss became nan at step 0"):
        loop.train(model, sentence_stream(bpe), opt, lambda s: 1.0, desc="finetune")


def test_train_stops_when_a_huge_lr_diverges(bpe):
    model = tiny_model(bpe)
    opt = loop.Optimisation(lr=1e30, steps=5, weight_decay=0.0)
    with pytest.raises(FloatingPointError, match=r"loss became (nan|inf) at step [1-4]"):
        loop.train(model, sentence_stream(bpe), opt, lambda s: 1.0)


def gradient_norm(model) -> float:
    return float(
        torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None))
    )


@pytest.mark.parametrize("max_norm", [None, 1.0, 0.25])
def test_clip_gradients_clips_only_when_given_a_norm(bpe, max_norm):
    """A huge loss (×1e6) gives a huge gradient: None leaves it, a number caps its L2 norm."""
    model = tiny_model(bpe)
    ids, mask, labels = next(sentence_stream(bpe))
    (model(input_ids=ids, attention_mask=mask, labels=labels).loss * 1e6).backward()
    before = gradient_norm(model)
    assert before > 1e3
    loop.clip_gradients(model, max_norm)
    after = gradient_norm(model)
    if max_norm is None:
        assert after == before
    else:
        assert after == pytest.approx(max_norm, rel=1e-4)


@pytest.mark.parametrize("max_norm", [None, 1.0])
def test_train_clips_with_the_configured_norm(bpe, monkeypatch, max_norm):
    seen = []
    monkeypatch.setattr(loop, "clip_gradients", lambda model, limit: seen.append(limit))
    opt = loop.Optimisation(lr=1e-3, steps=3, weight_decay=0.0, max_grad_norm=max_norm)
    loop.train(tiny_model(bpe), sentence_stream(bpe), opt, lambda s: 1.0)
    assert seen == [max_norm] * 3


# --- gradient accumulation ----------------------------------------------------------------


@pytest.mark.parametrize("micro", [1, 3, 4])
def test_micro_batches_accumulate_the_whole_batch_gradient(bpe, micro):
    """Token-weighted accumulation equals one pass over the padded batch (uneven lengths)."""
    sequences = lm_batches.encode_sentences(bpe, TEXTS[:5] + ["A story was slow."] * 3)
    batch = lm_batches.pad(sequences, bpe.pad_token_id, 32)
    whole, parts = tiny_model(bpe), tiny_model(bpe)
    loss_whole = loop.accumulate_gradients(whole, batch, None, "cpu", "float32")
    loss_parts = loop.accumulate_gradients(parts, batch, micro, "cpu", "float32")
    assert loss_parts == pytest.approx(loss_whole, rel=1e-5)
    for (name, a), b in zip(whole.named_parameters(), parts.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_micro_batches_of_a_classifier_average_over_examples(bpe):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(vocab_size=len(bpe), n_positions=32, n_embd=32, n_layer=1, n_head=2)
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    config.summary_first_dropout = 0.0
    config.pad_token_id, config.num_labels = bpe.pad_token_id, 2
    ids, mask, _ = lm_batches.pad(lm_batches.encode_sentences(bpe, TEXTS[:6]), bpe.pad_token_id, 32)
    batch = (ids, mask, torch.tensor([0, 1, 1, 0, 1, 0]))
    grads = []
    for micro in (None, 4):
        torch.manual_seed(0)
        model = GPT2ForSequenceClassification(config)
        loop.accumulate_gradients(model, batch, micro, "cpu", "float32")
        grads.append(model.score.weight.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


# --- fine-tuning --------------------------------------------------------------------------


def finetuned_weights(bpe, seed: int, global_seed: int) -> dict[str, torch.Tensor]:
    """θ0 with dropout 0.1 (as a hub GPT-2) fine-tuned 4 steps with `seed`, after another
    `global_seed` has moved torch's global RNG (as earlier work in the same process would)."""
    import pandas as pd

    from lmlerp.train import finetune

    model = tiny_model(bpe, seed=1)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1
    movie = pd.DataFrame({"text": TEXTS, "sentiment": "positive", "split": "train"})
    movie.loc[::5, "split"] = "val"
    movie.loc[1::5, ["sentiment", "split"]] = ["negative", "val"]
    candidate = {"lr": 1e-3, "batch_size": 8, "steps": 4}
    hp = {
        "seed": seed,
        "warmup_steps": 1,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "pool_size": 64,
    }
    torch.manual_seed(global_seed)
    trained, _, _ = finetune.run(model, bpe, movie, "positive", candidate, hp)
    return trained.state_dict()


def test_finetune_seeds_dropout_masks(bpe, restore_torch_settings):
    """One seed, bit-identical weights whatever torch's RNG held before; another seed differs."""
    jobs.deterministic(1)
    first, again = finetuned_weights(bpe, 3, global_seed=100), finetuned_weights(bpe, 3, 200)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    other = finetuned_weights(bpe, 4, global_seed=100)
    assert any(not torch.equal(first[n], other[n]) for n in first)


def test_finetune_reference_takes_the_recipe_selected_for_theta_pos(
    bpe, tmp_path, restore_torch_settings
):
    """Fig 9 (a) at paper scale: the reference fine-tuned on positive sentences with the
    candidate that candidates.tsv selected for θ+ (here the second of two)."""
    import pandas as pd

    from lmlerp.io import atomic, checkpoints
    from lmlerp.train import selection, tasks

    checkpoints.save(tiny_model(bpe, seed=2), bpe, tmp_path / "reference")
    movie = pd.DataFrame({"text": TEXTS, "sentiment": "positive", "split": "train"})
    movie.loc[::5, "split"] = "val"
    movie.loc[1::5, ["sentiment", "split"]] = ["negative", "val"]
    movie.to_parquet(tmp_path / "movie.parquet")
    candidates = {
        "a": {"lr": 1e-3, "batch_size": 8, "steps": 2},
        "b": {"lr": 3e-3, "batch_size": 4, "steps": 3},
    }
    table = selection.select(
        [{"candidate": "a", "val_ppl": 9.0}, {"candidate": "b", "val_ppl": 8.0}]
    )
    atomic.write_tsv(tmp_path / "candidates.tsv", table)
    hp = {"seed": 3, "warmup_steps": 1, "weight_decay": 0.0, "max_grad_norm": 1.0, "pool_size": 64}
    tasks.finetune_reference(
        reference=tmp_path / "reference", movie=tmp_path / "movie.parquet",
        selection_table=tmp_path / "candidates.tsv", model_dir=tmp_path / "reference_pos",
        loss_table=tmp_path / "loss.parquet", metrics_json=tmp_path / "metrics.json",
        candidates=candidates, hp=hp, device="cpu", dtype="float32", threads=1,
    )  # fmt: skip
    metrics = atomic.read_json(tmp_path / "metrics.json")
    assert {k: metrics[k] for k in ("lr", "batch_size", "steps")} == candidates["b"]
    assert len(pd.read_parquet(tmp_path / "loss.parquet")) == 3
    tuned = checkpoints.load(tmp_path / "reference_pos").state_dict()
    start = checkpoints.load(tmp_path / "reference").state_dict()
    assert not torch.equal(
        tuned["transformer.h.0.mlp.c_fc.weight"], start["transformer.h.0.mlp.c_fc.weight"]
    )
