"""Seeded classifier fine-tuning (full and LoRA), paths between models, Bezier training, and the
tables of the mode-connectivity stage."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from lmlerp import jobs
from lmlerp.connectivity import classifier, curves
from lmlerp.connectivity import examples as lmc_examples
from lmlerp.connectivity import tables as lmc_tables
from lmlerp.data import bpe as bpe_training
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.space import merge
from lmlerp.train import pretrain, schedules

GOOD = ["wonderful", "charming", "moving", "brilliant", "delightful"]
BAD = ["boring", "dreadful", "slow", "awful", "tedious"]
SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
VERBS = ["was", "seemed", "felt"]
ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}
HP = {
    "steps": 6, "checkpoint_every": 2, "batch_size": 8, "lr": 1e-3, "warmup_steps": 1,
    "power": 1.0, "end_lr_ratio": 0.0, "weight_decay": 0.1, "betas": [0.9, 0.98], "eps": 1e-6,
    "dropout": 0.1, "max_length": 16, "max_grad_norm": None,
}  # fmt: skip
LORA = {"rank": 4, "alpha": 8.0, "dropout": 0.0, "lr": 1e-2, "target_modules": ["c_attn"]}


def sentences(words):
    return [f"{s} {v} {w}." for s, v, w in itertools.product(SUBJECTS, VERBS, words)]


@pytest.fixture(scope="module")
def movie() -> pd.DataFrame:
    """A movie table shaped like results/prepare/movie.parquet (train and test splits)."""
    rows = []
    for sentiment, words in (("positive", GOOD), ("negative", BAD)):
        for i, text in enumerate(sentences(words)):
            rows.append(
                {"text": text, "sentiment": sentiment, "split": "train" if i % 3 else "test"}
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def theta0(tmp_path_factory, movie):
    """A tiny pretrained GPT-2 directory with its tokenizer (θ0 stand-in)."""
    bpe = bpe_training.train(movie.text.tolist(), vocab_size=300, min_frequency=2)
    directory = tmp_path_factory.mktemp("theta0") / "model"
    checkpoints.save(pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=0), bpe, directory)
    return directory


@pytest.fixture(scope="module")
def data():
    return {"task": "movie_sentiment", "glue": {"path": None, "fraction": 0.1, "eval_share": 0.2},
            "eval_examples": 10, "eval_batch_size": 7, "path_points": 5, "seed": 0}  # fmt: skip


def finetuned(theta0, movie, data, seed, out, lora=None):
    jobs.deterministic(1)
    bpe = tok.load(theta0)
    train, _ = lmc_examples.task_examples(data, movie)
    model = classifier.load_pretrained(theta0, 2, HP["dropout"], seed)
    history = classifier.finetune(model, bpe, train, HP, seed, out, lora)
    return model, history


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory, theta0, movie, data):
    root = tmp_path_factory.mktemp("seeds")
    for seed in (42, 43, 44):
        finetuned(theta0, movie, data, seed, root / f"seed{seed}")
    return root


# --- data ---------------------------------------------------------------------------------------


def test_movie_examples_label_positive_1_negative_0_and_cap_each_class(movie):
    test = lmc_examples.movie_examples(movie, "test", limit=4)
    assert list(test.label) == [0] * 4 + [1] * 4  # negative = 0 first, then positive = 1
    sentiment = movie.set_index("text").sentiment
    expected = ["positive" if y else "negative" for y in test.label]
    assert [sentiment[t] for t in test.text] == expected
    assert set(test.text) <= set(movie[movie.split == "test"].text)
    with pytest.raises(ValueError, match="no negative movie sentences in the 'val' split"):
        lmc_examples.movie_examples(movie, "val")


def test_glue_examples_take_a_seeded_fraction_and_split_80_20(tmp_path):
    n = 2000
    labels = ["entailment", "neutral", "contradiction", "-"]
    table = pd.DataFrame(
        {"sentence1": [f"a{i}" for i in range(n)], "sentence2": [f"b{i}" for i in range(n)],
         "gold_label": [labels[i % 4] for i in range(n)]}
    )  # fmt: skip
    path = tmp_path / "train.tsv"
    table.to_csv(path, sep="\t", index=False)
    frame, dropped = lmc_examples.glue_examples(path, "glue_mnli", 0.5, 0.2, seed=3)
    assert len(frame) == round(0.5 * n * 3 / 4)  # the "-" label is dropped before sampling
    assert dropped == {"lines": n, "unreadable": 0, "unknown_label": n // 4, "missing_text": 0}
    assert set(frame.label) == {0, 1, 2} and frame.text_pair.str.startswith("b").all()
    assert 0.15 < (frame.split == "eval").mean() < 0.25
    again, _ = lmc_examples.glue_examples(path, "glue_mnli", 0.5, 0.2, seed=3)
    pd.testing.assert_frame_equal(frame, again)
    assert lmc_examples.num_labels("glue_mnli") == 3 and lmc_examples.num_labels("glue_qqp") == 2


def test_checkpoint_steps_are_the_start_every_k_and_the_last():
    assert classifier.checkpoint_steps(6, 2) == [0, 2, 4, 6]
    assert classifier.checkpoint_steps(7, 3) == [0, 3, 6, 7]
    assert classifier.checkpoint_steps(5, 5) == [0, 5]


def test_polynomial_schedule_with_power_one_and_end_zero_is_the_linear_schedule():
    for step in range(25):
        assert schedules.polynomial_schedule(step, 5, 20, 1.0, 0.0) == pytest.approx(
            schedules.linear_schedule(step, 5, 20)
        )
    assert schedules.polynomial_schedule(20, 5, 20, 2.0, 0.1) == pytest.approx(0.1)
    assert schedules.polynomial_schedule(5 + 5, 5, 15, 2.0, 0.0) == pytest.approx(0.25)


# --- classifier fine-tuning -------------------------------------------------------------------


def test_two_seeds_give_different_weights_and_one_seed_the_same(
    seed_runs, theta0, movie, data, tmp_path
):
    steps = {seed: classifier.saved_steps(seed_runs / f"seed{seed}") for seed in (42, 43)}
    assert list(steps[42]) == [0, 2, 4, 6] == list(steps[43])
    a = classifier.load(steps[42][6]).state_dict()
    b = classifier.load(steps[43][6]).state_dict()
    assert not torch.equal(a["score.weight"], b["score.weight"])  # head init differs by seed
    body = "transformer.h.0.attn.c_attn.weight"
    assert not torch.equal(a[body], b[body])  # so do the data order and dropout masks
    finetuned(theta0, movie, data, 42, tmp_path / "again")
    again = classifier.load(tmp_path / "again" / "step-6").state_dict()
    for name, tensor in a.items():
        assert torch.equal(tensor, again[name]), name


def test_checkpoints_hold_the_weights_after_their_step(seed_runs):
    steps = classifier.saved_steps(seed_runs / "seed42")
    first = classifier.load(steps[2]).state_dict()["score.weight"]
    last = classifier.load(steps[6]).state_dict()["score.weight"]
    assert not torch.equal(first, last)
    assert list((seed_runs / "seed42" / "step-6").glob("*.safetensors"))


def test_lora_checkpoint_equals_the_adapter_forward(theta0, movie, data, tmp_path):
    model, _ = finetuned(theta0, movie, data, 42, tmp_path / "lora", lora=LORA)
    # get_peft_model injected the adapters into this very model: its forward is the adapter's
    assert any("lora_B" in name for name, _ in model.named_parameters())
    ids = torch.randint(1, 200, (3, 9))
    mask = torch.ones_like(ids)
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
        saved = classifier.load(tmp_path / "lora" / "step-6")
        got = saved(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    base = classifier.load_pretrained(theta0, 2, 0.0, 42).state_dict()
    merged = saved.state_dict()
    name = "transformer.h.0.attn.c_attn.weight"
    assert not torch.equal(merged[name], base[name])  # the adapter moved the merged weight
    torch.testing.assert_close(
        merged["transformer.h.0.mlp.c_fc.weight"], base["transformer.h.0.mlp.c_fc.weight"]
    )  # no adapter there: untouched


# --- paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 9])
def test_grid_has_n_points_from_0_to_1(n):
    ts = curves.grid(n)
    assert len(ts) == n and ts[0] == 0 and ts[-1] == 1
    assert all(b > a for a, b in itertools.pairwise(ts))


def test_grid_needs_both_ends():
    with pytest.raises(ValueError, match="at least 2 points"):
        curves.grid(1)


@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_bezier_with_phi_at_the_midpoint_is_the_line(t):
    g = torch.Generator().manual_seed(0)
    theta1, theta2 = ({"w": torch.randn(4, 3, generator=g)} for _ in range(2))
    bases = {"theta1": theta1, "theta2": theta2, "phi": {"w": (theta1["w"] + theta2["w"]) / 2}}
    torch.testing.assert_close(
        merge.combine(bases, curves.bezier(t))["w"], merge.combine(bases, curves.line(t))["w"]
    )
    assert sum(curves.bezier(t).values()) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [2, 5])
def test_seed_pair_lines_evaluate_n_points_with_endpoints_equal_to_the_seeds(
    seed_runs, movie, data, n
):
    bpe = tok.load(seed_runs / "seed42" / "step-6")
    _, held_out = lmc_examples.task_examples(data, movie, data["eval_examples"])
    batches = lmc_examples.held_out_batches(bpe, held_out, 16, 7)
    table = curves.seed_pair_lines(
        {42: seed_runs / "seed42", 43: seed_runs / "seed43"}, curves.grid(n),
        lambda m: classifier.evaluate(m, batches),
    )  # fmt: skip
    assert list(table.columns) == ["pair", "step", "t", "loss", "accuracy"]
    assert len(table) == 4 * n and sorted(set(table.step)) == [0, 2, 4, 6]
    assert set(table.pair) == {"42-43"}
    last = table[table.step == 6]
    for t, seed in ((0.0, 42), (1.0, 43)):
        own = classifier.evaluate(classifier.load(seed_runs / f"seed{seed}" / "step-6"), batches)
        row = last[last.t == t].iloc[0]
        assert row.loss == pytest.approx(own["loss"], rel=1e-5)
        assert row.accuracy == own["accuracy"]


def test_evaluate_matches_a_per_example_computation(seed_runs, movie, data):
    bpe = tok.load(seed_runs / "seed42" / "step-6")
    _, held_out = lmc_examples.task_examples(data, movie, data["eval_examples"])
    model = classifier.load(seed_runs / "seed42" / "step-6")
    result = classifier.evaluate(model, lmc_examples.held_out_batches(bpe, held_out, 16, 7))
    losses, hits = [], []
    with torch.no_grad():
        for ids, label in classifier.encode(bpe, held_out, 16):
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            losses.append(-torch.log_softmax(logits, -1)[label].item())
            hits.append(int(logits.argmax()) == label)
    assert result["loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(hits))


# --- Bezier training ------------------------------------------------------------------------


def ring_loss(params):
    """A ring-shaped valley (|w|² − 1)²: the line from (−1, 0) to (1, 0) crosses its peak."""
    return (params["w"].pow(2).sum() - 1) ** 2


def expected_loss(theta1, phi, theta2, points=101):
    ts = np.linspace(0, 1, points)
    values = []
    for t in ts:
        c = curves.bezier(t)
        w = c["theta1"] * theta1["w"] + c["phi"] * phi["w"] + c["theta2"] * theta2["w"]
        values.append(ring_loss({"w": w}).item())
    return float(np.mean(values))


def test_bezier_training_lowers_the_expected_loss_on_a_toy_valley():
    theta1, theta2 = {"w": torch.tensor([-1.0, 0.0])}, {"w": torch.tensor([1.0, 0.0])}
    midpoint = {"w": torch.zeros(2)}
    before = expected_loss(theta1, midpoint, theta2)
    # start exactly at the midpoint = (0, 0): the gradient there is 0 along y, so nudge y via a
    # sliver of asymmetry in the endpoints, as any real pair has
    theta2 = {"w": torch.tensor([1.0, 1e-3])}
    phi, history = curves.train_control_point(theta1, theta2, ring_loss, 400, 0.05, seed=0)
    after = expected_loss(theta1, phi, theta2)
    assert before == pytest.approx(8 / 15, abs=0.01)  # the line: ∫ 16t²(1 − t)² dt = 8/15
    assert after < 0.25 * before
    assert abs(phi["w"][1]) > 1  # the curve bends around the ring instead of crossing it
    assert list(history.columns) == ["step", "t", "loss"] and len(history) == 400


def test_bezier_training_is_seeded():
    theta1, theta2 = {"w": torch.tensor([-1.0, 0.0])}, {"w": torch.tensor([1.0, 1e-3])}
    a, _ = curves.train_control_point(theta1, theta2, ring_loss, 20, 0.05, seed=1)
    b, _ = curves.train_control_point(theta1, theta2, ring_loss, 20, 0.05, seed=1)
    assert torch.equal(a["w"], b["w"])


def test_bezier_vs_line_on_classifiers_keeps_the_endpoints(seed_runs, movie, data):
    jobs.deterministic(1)
    ends = [seed_runs / "seed42", seed_runs / "seed43"]
    model1, model2, batches, evaluate, _ = curves.pair_setup(
        "seeds_full", ends, movie, data, 8, 16, 0
    )
    own = [evaluate(model1), evaluate(model2)]
    table, history, phi = curves.bezier_vs_line(
        model1, model2, batches, evaluate, curves.grid(5), 4, 1e-3, 0
    )
    assert len(history) == 4 and set(table.path) == {"line", "bezier"}
    for path, group in table.groupby("path"):
        assert group.loss.iloc[0] == pytest.approx(own[0]["loss"], rel=1e-5), path
        assert group.loss.iloc[-1] == pytest.approx(own[1]["loss"], rel=1e-5), path
    assert phi.config.num_labels == 2


def test_step_0_is_theta0_with_each_seeds_fresh_head_and_has_no_loss_barrier(
    seed_runs, theta0, movie, data
):
    start = {seed: classifier.load(seed_runs / f"seed{seed}" / "step-0") for seed in (42, 43)}
    fresh = classifier.load_pretrained(theta0, 2, HP["dropout"], 42).state_dict()
    for name, tensor in start[42].state_dict().items():
        assert torch.equal(tensor, fresh[name]), name  # no update before the step-0 checkpoint
    a, b = (start[seed].state_dict() for seed in (42, 43))
    assert not torch.equal(a["score.weight"], b["score.weight"])
    assert all(torch.equal(a[n], b[n]) for n in a if n != "score.weight")  # only the head differs
    # So the logits are affine in t and the cross-entropy, convex in the logits, has no barrier.
    bpe = tok.load(seed_runs / "seed42" / "step-0")
    _, held_out = lmc_examples.task_examples(data, movie, data["eval_examples"])
    batches = lmc_examples.held_out_batches(bpe, held_out, 16, 7)
    table = curves.seed_pair_lines(
        {42: seed_runs / "seed42", 43: seed_runs / "seed43"}, curves.grid(5),
        lambda m: classifier.evaluate(m, batches),
    )  # fmt: skip
    start_loss = lmc_tables.barriers(table).query("step == 0 and quantity == 'loss'").iloc[0]
    assert start_loss.convexity_gap == pytest.approx(0, abs=1e-6)


def test_three_seeds_give_three_pairs_at_every_step(seed_runs, movie, data):
    bpe = tok.load(seed_runs / "seed42" / "step-0")
    _, held_out = lmc_examples.task_examples(data, movie, data["eval_examples"])
    batches = lmc_examples.held_out_batches(bpe, held_out, 16, 7)
    dirs = {seed: seed_runs / f"seed{seed}" for seed in (42, 43, 44)}
    table = curves.seed_pair_lines(dirs, curves.grid(3), lambda m: classifier.evaluate(m, batches))
    assert sorted(set(table.pair)) == ["42-43", "42-44", "43-44"]
    assert len(table) == 3 * 4 * 3  # pairs × steps (0, 2, 4, 6) × t
    ends = table[(table.step == 6) & (table.t == 1.0)].set_index("pair").loss
    assert ends["42-44"] == pytest.approx(ends["43-44"], rel=1e-5)  # both end at seed 44
    barriers = lmc_tables.barriers(table).assign(model="tiny")
    row = lmc_tables.report_table(barriers, "loss").set_index("metric").loc["BH"]
    last = barriers.query("step == 6 and quantity == 'loss'").barrier_height
    assert list(row) == pytest.approx([last.mean(), last.min(), last.max()])


# --- the job's device and dtype -------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_connect_evaluates_on_the_claimed_device_in_the_configured_dtype(
    seed_runs, movie, data, tmp_path, monkeypatch, dtype
):
    """`connect` claims its device through `jobs.setup` and every evaluation runs there, under
    bf16 autocast when `dtype` asks (a CPU stands in for the claimed GPU)."""
    from lmlerp.connectivity import tasks

    claims, seen = [], []
    evaluate = classifier.evaluate

    def claim(threads, device):
        claims.append(device)
        return "cpu"  # what devices.claim would give: a CPU stands in for the claimed GPU

    def spy(model, **kwargs):
        seen.append(
            (next(model.parameters()).device, torch.is_autocast_enabled("cpu"),
             torch.get_autocast_dtype("cpu"))
        )  # fmt: skip
        return evaluate(model, **kwargs)

    monkeypatch.setattr(jobs, "setup", claim)
    monkeypatch.setattr(classifier, "evaluate", spy)
    movie.to_parquet(tmp_path / "movie.parquet")
    out = {"curves_table": tmp_path / "curves.parquet", "barriers_table": tmp_path / "b.parquet"}
    tasks.connect(
        checkpoints_dir=seed_runs, movie=tmp_path / "movie.parquet", data=data, seeds=[42, 43],
        max_length=16, device="cuda", dtype=dtype, threads=1, **out,
    )  # fmt: skip
    assert claims == ["cuda"]
    assert len(seen) == 4 * data["path_points"]  # steps 0, 2, 4, 6 × t
    bf16 = dtype == "bfloat16"
    assert all(d == torch.device("cpu") and on == bf16 for d, on, _ in seen)
    assert not bf16 or all(kind == torch.bfloat16 for *_, kind in seen)
    loss = pd.read_parquet(out["curves_table"]).loss
    reference = curves.seed_pair_lines(
        {42: seed_runs / "seed42", 43: seed_runs / "seed43"}, curves.grid(data["path_points"]),
        lambda m: evaluate(m, lmc_examples.held_out_batches(
            tok.load(seed_runs / "seed42" / "step-0"),
            lmc_examples.task_examples(data, movie, data["eval_examples"])[1], 16, 7)),
    ).loss  # fmt: skip
    if bf16:  # computed in bf16: close to the fp32 values, not equal
        np.testing.assert_allclose(loss, reference, rtol=0.05)
        assert not np.allclose(loss, reference, rtol=1e-6)
    else:
        np.testing.assert_allclose(loss, reference, rtol=1e-6)


def test_the_bezier_loss_is_computed_in_the_configured_dtype(seed_runs, movie, data):
    jobs.deterministic(1)
    ends = [seed_runs / "seed42", seed_runs / "seed43"]
    model, _, batches, _, _ = curves.pair_setup("seeds_full", ends, movie, data, 8, 16, 0)
    batch = next(batches)
    params = curves.trainable(model)
    fp32 = curves.model_loss(model, iter([batch]))(params)
    bf16 = curves.model_loss(model, iter([batch]), "bfloat16")(params)
    assert fp32.dtype == bf16.dtype == torch.float32
    assert bf16.item() == pytest.approx(fp32.item(), rel=0.05) and bf16.item() != fp32.item()
