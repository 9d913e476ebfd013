"""Resumable training: a run interrupted after a saved state and resumed ends bit-identical to an
uninterrupted one (pretraining, fine-tuning, classifiers); batch sources fast-forward exactly;
a state saved for other params is ignored."""

import itertools
import random

import numpy as np
import pandas as pd
import pytest
import torch

from lmlerp import jobs
from lmlerp.connectivity import classifier
from lmlerp.connectivity import examples as lmc_examples
from lmlerp.data import bpe as bpe_training
from lmlerp.data.tokens import document_ids
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.train import batches as lm_batches
from lmlerp.train import finetune, loop, pretrain
from lmlerp.train.resume import Resume

GOOD = ["wonderful", "charming", "moving", "brilliant", "delightful"]
BAD = ["boring", "dreadful", "slow", "awful", "tedious"]
SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
VERBS = ["was", "seemed", "felt"]
TEXTS = [f"{s} {v} {w}." for s, v, w in itertools.product(SUBJECTS, VERBS, GOOD + BAD)]
ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}


class Interrupted(Exception):
    """Stands in for the kill: raised inside a training step."""


@pytest.fixture(autouse=True)
def deterministic():
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    jobs.deterministic(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(strict)


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, vocab_size=300, min_frequency=2)


@pytest.fixture
def interrupt(monkeypatch):
    """`interrupt(n)`: the n-th training step (1-based) from now raises Interrupted."""

    def arm(n: int) -> None:
        real, calls = loop.accumulate_gradients, itertools.count(1)

        def step(*args, **kwargs):
            if next(calls) == n:
                monkeypatch.setattr(loop, "accumulate_gradients", real)
                raise Interrupted
            return real(*args, **kwargs)

        monkeypatch.setattr(loop, "accumulate_gradients", step)

    return arm


def assert_same_weights(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def movie() -> pd.DataFrame:
    table = pd.DataFrame({"text": TEXTS, "sentiment": "positive", "split": "train"})
    table.loc[table.text.str.contains("|".join(BAD)), "sentiment"] = "negative"
    table.loc[::5, "split"] = "val"
    return table


# --- batch sources -------------------------------------------------------------------------


def test_block_batches_from_start_continue_the_stream():
    stream = np.arange(500, dtype=np.uint16)  # as a token file's memory map
    whole = list(itertools.islice(lm_batches.block_batches(stream, 4, 16, seed=3), 9))
    resumed = list(itertools.islice(lm_batches.block_batches(stream, 4, 16, 3, start=5), 4))
    for a, b in zip(whole[5:], resumed, strict=True):
        assert torch.equal(a[0], b[0])


@pytest.mark.parametrize("start", [0, 3, 4, 11])  # 4 batches an epoch: mid-epoch and boundaries
def test_sentence_batches_from_start_continue_the_stream(bpe, start):
    sequences = lm_batches.encode_sentences(bpe, TEXTS[:33])  # 33 sentences: 4 batches of 8
    source = lm_batches.sentence_batches(sequences, 8, bpe.eos_token_id, 32, 5, pool_size=16)
    whole = list(itertools.islice(source, start + 6))
    resumed = lm_batches.sentence_batches(sequences, 8, bpe.eos_token_id, 32, 5, 16, start)
    for a, b in zip(whole[start:], itertools.islice(resumed, 6), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("start", [0, 2, 3, 7])
def test_classifier_batches_from_start_continue_the_stream(start):
    encoded = [([i + 1] * (1 + i % 4), i % 2) for i in range(25)]  # 3 batches of 8 an epoch
    whole = list(itertools.islice(lmc_examples.train_batches(encoded, 8, 0, 8, 4), start + 5))
    resumed = lmc_examples.train_batches(encoded, 8, 0, 8, 4, start)
    for a, b in zip(whole[start:], itertools.islice(resumed, 5), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])


# --- interrupted and resumed runs ------------------------------------------------------------

PRETRAIN = {
    "steps": 7, "batch_size": 4, "block_size": 16, "lr": 3e-3, "warmup_steps": 2,
    "min_lr_ratio": 0.1, "weight_decay": 0.01, "betas": [0.9, 0.95], "eps": 1e-8,
    "eval_tokens": 256, "max_grad_norm": 1.0,
}  # fmt: skip


def pretrained(bpe, state: Resume | None):
    """Pretraining on packed ids of TEXTS (every 7th text held out), as token files give them."""
    val = [t for k, t in enumerate(TEXTS) if k % 7 == 0]
    train = [t for k, t in enumerate(TEXTS) if k % 7 != 0]
    train_ids, val_ids = (next(document_ids(bpe, [texts])) for texts in (train, val))
    return pretrain.run(train_ids, val_ids, "theta0", bpe, ARCH, PRETRAIN, 11, resume=state)


def test_pretraining_resumed_from_a_state_is_bit_identical(bpe, tmp_path, interrupt, capfd):
    model, history, metrics = pretrained(bpe, None)
    state = Resume(tmp_path / "resume", every=3, key="k")
    interrupt(5)  # steps 1–4 done, state saved after step 3
    with pytest.raises(Interrupted):
        pretrained(bpe, state)
    assert (tmp_path / "resume" / "state.safetensors").is_file()
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # the re-run starts elsewhere
    again, history_again, metrics_again = pretrained(bpe, state)
    assert "resuming from step 3" in capfd.readouterr().err
    assert_same_weights(model.state_dict(), again.state_dict())
    pd.testing.assert_frame_equal(history, history_again, check_exact=True)
    assert metrics == metrics_again


def test_resume_restores_python_and_numpy_generators(bpe, tmp_path, interrupt):
    state = Resume(tmp_path / "resume", every=2, key="k")
    random.seed(1), np.random.seed(2)
    interrupt(3)
    with pytest.raises(Interrupted):
        pretrained(bpe, state)
    expected = (random.random(), np.random.random())  # what the next draws were at the save
    random.seed(5), np.random.seed(5)
    model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, 0)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    assert state.restore(model, optimizer, scheduler)[0] == 2
    assert (random.random(), np.random.random()) == expected


def test_a_state_saved_for_other_params_is_ignored(bpe, tmp_path, interrupt, capfd):
    model, _, _ = pretrained(bpe, None)
    interrupt(5)
    with pytest.raises(Interrupted):
        pretrained(bpe, Resume(tmp_path / "resume", every=3, key="old"))
    again, _, _ = pretrained(bpe, Resume(tmp_path / "resume", every=3, key="new"))
    err = capfd.readouterr().err
    assert "ignoring the resume state" in err and "starting from step 0" in err
    assert "resuming from" not in err
    assert_same_weights(model.state_dict(), again.state_dict())


def finetuned(bpe, state: Resume | None):
    model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, 1)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1  # dropout masks come from torch's RNG: restored too
    candidate = {"lr": 1e-3, "batch_size": 8, "steps": 9}
    hp = {"seed": 3, "warmup_steps": 1, "weight_decay": 0.0, "max_grad_norm": 1.0, "pool_size": 16}
    return finetune.run(model, bpe, movie(), "positive", candidate, hp, resume=state)


def test_finetuning_resumed_from_a_state_is_bit_identical(bpe, tmp_path, interrupt, capfd):
    model, history, metrics = finetuned(bpe, None)
    state = Resume(tmp_path / "resume", every=4, key="k")
    interrupt(7)  # a state after step 4, inside the second epoch of 6 batches
    with pytest.raises(Interrupted):
        finetuned(bpe, state)
    torch.manual_seed(123)
    again, history_again, metrics_again = finetuned(bpe, state)
    assert "resuming from step 4" in capfd.readouterr().err
    assert_same_weights(model.state_dict(), again.state_dict())
    pd.testing.assert_frame_equal(history, history_again, check_exact=True)
    assert metrics == metrics_again


HP = {
    "steps": 6, "checkpoint_every": 2, "batch_size": 8, "lr": 1e-3, "warmup_steps": 1,
    "power": 1.0, "end_lr_ratio": 0.0, "weight_decay": 0.1, "betas": [0.9, 0.98], "eps": 1e-6,
    "dropout": 0.1, "max_length": 16, "max_grad_norm": None,
}  # fmt: skip


@pytest.mark.parametrize("lora", [None, {"rank": 2, "alpha": 4.0, "dropout": 0.1, "lr": 1e-2,
                                          "target_modules": ["c_attn"]}])  # fmt: skip
def test_classifiers_resumed_from_a_state_are_bit_identical(bpe, tmp_path, interrupt, capfd, lora):
    source = tmp_path / "theta0"
    checkpoints.save(pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, 0), bpe, source)
    bpe = tok.load(source)
    train = lmc_examples.task_examples(
        {
            "task": "movie_sentiment",
            "glue": {"path": None, "fraction": 0.1, "eval_share": 0.2},
            "seed": 0,
        },
        movie().replace({"split": {"val": "test"}}),
        10,
    )[0]

    def run(out, state):
        return classifier.finetune_seeds(
            source, bpe, train, HP, [42, 43], 2, out, lora, resume=state
        )

    history = run(tmp_path / "whole", None)
    state = Resume(tmp_path / "resume", every=1, key="k")
    interrupt(6 + 4)  # seed 42 done, seed 43 after its step-2 state (steps 3, 4 lost)
    with pytest.raises(Interrupted):
        run(tmp_path / "killed", state)
    assert not (tmp_path / "killed").exists()
    again = run(tmp_path / "killed", state)
    assert "resuming from step 2" in capfd.readouterr().err
    pd.testing.assert_frame_equal(history, again, check_exact=True)
    for seed in (42, 43):
        steps = classifier.saved_steps(classifier.seed_directory(tmp_path / "whole", seed))
        resumed = classifier.saved_steps(classifier.seed_directory(tmp_path / "killed", seed))
        assert list(steps) == list(resumed) == [0, 2, 4, 6]
        for step, directory in steps.items():
            assert (directory / "model.safetensors").read_bytes() == (
                resumed[step] / "model.safetensors"
            ).read_bytes(), (seed, step)


def test_clear_removes_the_state_and_a_killed_writer_s_temporary(tmp_path):
    state = Resume(tmp_path / "resume" / "job", every=1, key="k")
    (tmp_path / "resume" / "job").mkdir(parents=True)
    (tmp_path / "resume" / ".job.abcd1234.tmp").mkdir()  # a save killed before its rename
    state.clear()
    assert list((tmp_path / "resume").iterdir()) == []
