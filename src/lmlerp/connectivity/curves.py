"""Paths between two models: the straight line and a trained quadratic Bezier curve.

Line (Frankle et al. 2020):  θ(t) = (1 − t)·θ1 + t·θ2
Bezier (Garipov et al. 2018, https://arxiv.org/abs/1802.10026; Qin et al. 2022):
                             θ(t) = (1 − t)²·θ1 + 2t(1 − t)·φ + t²·θ2,   t ∈ [0, 1]

Both are affine combinations of named bases, so every point is built by `space.merge.combine`
(fp32, checked) from coefficient functions. The control point φ starts at the midpoint
(θ1 + θ2)/2 — where the curve *is* the line, since (1 − t)² + t(1 − t) = 1 − t — and is trained
to minimise E_{t ~ U(0,1)} L(θ(t)) by one-sample stochastic gradients: each step draws one t
and one batch (Garipov et al.'s estimator). The endpoints stay fixed.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.func import functional_call
from transformers import PreTrainedModel

from lmlerp.connectivity import classifier, examples
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.space.merge import combine
from lmlerp.train.batches import encode_sentences, sentence_batches
from lmlerp.train.loss import autocast, sentence_nll

State = Mapping[str, torch.Tensor]


def line(t: float) -> dict[str, float]:
    """Coefficients of the straight path: (1 − t)·θ1 + t·θ2."""
    return {"theta1": 1 - t, "theta2": t}


def bezier(t: float) -> dict[str, float]:
    """Coefficients of the quadratic Bezier curve: (1 − t)²·θ1 + 2t(1 − t)·φ + t²·θ2."""
    return {"theta1": (1 - t) ** 2, "phi": 2 * t * (1 - t), "theta2": t**2}


PATHS: dict[str, Callable[[float], dict[str, float]]] = {"line": line, "bezier": bezier}


def grid(points: int) -> list[float]:
    """N equally spaced t in [0, 1], both ends included (any N ≥ 2)."""
    if points < 2:
        raise ValueError(f"a path needs at least 2 points (both ends), got {points}")
    return [i / (points - 1) for i in range(points)]


def evaluate_path(
    model: PreTrainedModel,
    bases: Mapping[str, State],
    path: Callable[[float], dict[str, float]],
    ts: Sequence[float],
    evaluate: Callable[[PreTrainedModel], Mapping[str, float]],
    dtype: str = "float32",
) -> pd.DataFrame:
    """Evaluate the model at every t of the path: one row per t with the metrics of `evaluate`.

    The weights of each point, Σ c_r(t)·θ_r, come from `combine` (fp32, on the bases' device)
    and are loaded strictly into `model` (one model object, reused); `evaluate` runs on the
    model's device, under bf16 autocast when `dtype` is bfloat16 (as training computes).
    """
    device = str(next(model.parameters()).device)
    rows = []
    for t in ts:
        model.load_state_dict(combine(bases, path(t)), strict=True)
        with autocast(device, dtype):
            rows.append({"t": float(t), **evaluate(model.eval())})
    return pd.DataFrame(rows)


PAIR_KEYS = ("pair", "step", "t")  # the coordinates of a row of `seed_pair_lines`


def pair_label(seed1: int, seed2: int) -> str:
    """The name of a seed pair in tables and summary.json: `<seed1>-<seed2>`."""
    return f"{seed1}-{seed2}"


def seed_pair_lines(
    seed_dirs: Mapping[int, str | Path],
    ts: Sequence[float],
    evaluate: Callable[[PreTrainedModel], Mapping[str, float]],
    device: str = "cpu",
    dtype: str = "float32",
) -> pd.DataFrame:
    """The metrics along the line between every pair of seeds at every shared checkpoint step.

    `seed_dirs` maps each seed to its checkpoint directory; the pairs are all C(n, 2) pairs
    (seed1 before seed2 in the mapping's order), so n seeds give a spread over n(n − 1)/2 lines.
    Each checkpoint is loaded once per step; the paths are built and evaluated on `device`
    (in `dtype`, `evaluate_path`).
    Returns columns pair, step, t and the metrics of `evaluate` (loss, accuracy, f1 where
    measured), one row per pair × step × t.
    """
    if len(seed_dirs) < 2:
        raise ValueError(f"{list(seed_dirs.values())}: a line needs two or more seeds")
    saved = {seed: classifier.saved_steps(d) for seed, d in seed_dirs.items()}
    steps = sorted(set.intersection(*(set(found) for found in saved.values())))
    if not steps:
        raise ValueError(f"{list(seed_dirs.values())}: the seeds share no checkpoint step")
    frames = []
    for step in steps:
        model = classifier.load(next(iter(saved.values()))[step]).to(device)
        states = {
            s: classifier.load(found[step]).to(device).state_dict() for s, found in saved.items()
        }
        for seed1, seed2 in itertools.combinations(states, 2):
            bases = {"theta1": states[seed1], "theta2": states[seed2]}
            curve = evaluate_path(model, bases, line, ts, evaluate, dtype)
            frames.append(curve.assign(pair=pair_label(seed1, seed2), step=step))
    table = pd.concat(frames, ignore_index=True)
    return table[["pair", "step", "t", *(c for c in table.columns if c not in PAIR_KEYS)]]


def train_control_point(
    theta1: State,
    theta2: State,
    loss_of: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    steps: int,
    lr: float,
    seed: int,
) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """Train φ of the Bezier curve between fixed θ1 and θ2 to minimise E_t L(θ(t)).

    `loss_of(params)` returns the loss of weights `params` (same names as θ1) on a fresh batch.
    φ starts at (θ1 + θ2)/2 and takes `steps` Adam steps; each draws t ~ U(0, 1) from a generator
    seeded by `seed`. Returns φ (float32, detached) and the history (step, t, loss).
    """
    if set(theta1) != set(theta2):
        raise ValueError(f"endpoints differ in tensors: {sorted(set(theta1) ^ set(theta2))[:3]}")
    ends = {n: (theta1[n].detach().float(), theta2[n].detach().float()) for n in theta1}
    phi = {n: ((a + b) / 2).clone().requires_grad_(True) for n, (a, b) in ends.items()}
    optimizer = torch.optim.Adam(phi.values(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for step in range(steps):
        t = torch.rand((), generator=generator).item()
        c = bezier(t)
        params = {
            n: c["theta1"] * a + c["phi"] * phi[n] + c["theta2"] * b for n, (a, b) in ends.items()
        }
        loss = loss_of(params)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Bezier training: loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rows.append({"step": step, "t": t, "loss": loss.item()})
    return {n: p.detach() for n, p in phi.items()}, pd.DataFrame(rows)


def model_loss(
    model: PreTrainedModel, batches: Iterator[tuple[torch.Tensor, ...]], dtype: str = "float32"
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """`loss_of` for a Hugging Face model: its own loss for `labels` on the next batch, computed
    with the given parameters by `torch.func.functional_call` on the model's device, under bf16
    autocast when `dtype` is bfloat16 (dropout off; tied weights stay tied because
    `named_parameters` lists a tied tensor once)."""
    model.eval()

    device = next(model.parameters()).device

    def loss_of(params: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask, labels = (t.to(device) for t in next(batches))
        inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        with autocast(str(device), dtype):
            return functional_call(model, params, args=(), kwargs=inputs).loss.float()

    return loss_of


def trainable(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The model's parameters by name (a tied tensor once): what the curve moves."""
    return {name: p.detach() for name, p in model.named_parameters()}


def with_parameters(model: PreTrainedModel, params: Mapping[str, torch.Tensor]) -> PreTrainedModel:
    """A copy of `model` holding `params` (buffers and weight tying kept): e.g. φ as a model."""
    out = copy.deepcopy(model)
    for name, value in params.items():
        out.get_parameter(name).data.copy_(value)
    return out.eval()


def bezier_vs_line(
    model1: PreTrainedModel,
    model2: PreTrainedModel,
    batches: Iterator[tuple[torch.Tensor, ...]],
    evaluate: Callable[[PreTrainedModel], Mapping[str, float]],
    ts: Sequence[float],
    steps: int,
    lr: float,
    seed: int,
    dtype: str = "float32",
) -> tuple[pd.DataFrame, pd.DataFrame, PreTrainedModel]:
    """Train the Bezier curve between two models, then evaluate it and the line at every t, on
    model1's device (φ's fp32 master weights too), under bf16 autocast when `dtype` asks.

    Returns the curves (columns path = line | bezier, t, and the metrics of `evaluate`), the
    training history, and φ as a model of model1's class.
    """
    loss_of = model_loss(model1, batches, dtype)
    phi, history = train_control_point(
        trainable(model1), trainable(model2), loss_of, steps, lr, seed
    )
    phi_model = with_parameters(model1, phi)
    del phi  # φ lives on in phi_model: one copy of the weights fewer while the paths are scored
    # the endpoints' own tensors are the bases (tied tensors alias, so `combine` combines them
    # once); each point is loaded into a copy of model1, which leaves θ1 as it was
    bases = {
        "theta1": model1.state_dict(),
        "phi": phi_model.state_dict(),
        "theta2": model2.state_dict(),
    }
    vessel = copy.deepcopy(model1)
    frames = [
        evaluate_path(vessel, bases, PATHS[name], ts, evaluate, dtype).assign(path=name)
        for name in ("line", "bezier")
    ]
    return pd.concat(frames, ignore_index=True), history, phi_model


def pair_setup(
    pair: str,
    endpoints: Sequence[str | Path],
    movie: pd.DataFrame,
    data: Mapping[str, Any],
    batch_size: int,
    max_length: int,
    seed: int,
    device: str = "cpu",
) -> tuple[PreTrainedModel, PreTrainedModel, Iterator, Callable, Any]:
    """Endpoints (on `device`), training batches, held-out evaluation and tokenizer of one pair.

    theta_pos_neg: θ+ and θ− (causal LMs), loss = mean token NLL of movie sentences of both
    sentiments (trained on the `train` split, evaluated on the first `eval_examples` per class of
    `test`). seeds_full / seeds_lora: the two seeds' last classifier checkpoints, loss = class
    cross-entropy on the task (`examples.task_examples`), evaluated with its accuracy.
    """
    if pair == "theta_pos_neg":
        models = [checkpoints.load(d).to(device) for d in endpoints]
        bpe = tok.load(endpoints[0])
        texts = {
            split: examples.movie_examples(movie, split, limit).text.tolist()
            for split, limit in (("train", None), ("test", data["eval_examples"]))
        }
        train = encode_sentences(bpe, texts["train"])
        batches = sentence_batches(train, batch_size, bpe.pad_token_id, max_length, seed)

        def evaluate(model: PreTrainedModel) -> dict[str, float]:
            nll = sentence_nll(
                model, bpe, texts["test"], max_length=max_length,
                batch_size=data["eval_batch_size"],
            )  # fmt: skip
            return {"loss": nll}

        return models[0], models[1], batches, evaluate, bpe
    last = [list(classifier.saved_steps(d).values())[-1] for d in endpoints]
    models = [classifier.load(d).to(device) for d in last]
    bpe = tok.load(last[0])
    train, held_out = examples.task_examples(data, movie, data["eval_examples"])
    encoded = examples.encode(bpe, train, max_length)
    batches = examples.train_batches(encoded, batch_size, bpe.pad_token_id, max_length, seed)
    held = examples.held_out_batches(bpe, held_out, max_length, data["eval_batch_size"])
    positive = examples.positive_class(data["task"])
    evaluate = functools.partial(classifier.evaluate, batches=held, positive=positive)
    return models[0], models[1], batches, evaluate, bpe
