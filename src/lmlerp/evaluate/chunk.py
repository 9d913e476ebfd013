"""Evaluate a chunk of path points: rebuild each model in memory, sample, score.

`evaluate.tasks.evaluate` hands over only the points the point cache lacks
(`lmlerp.evaluate.cache`); `evaluate_points` yields each as soon as it is done, so that it is
stored at once, and `assemble` builds the chunk's tables from the cached results.

One job loads the bases, the judges and the data once and walks several points (DESIGN §2:
Python start-up and model loading cost more than a small point's work). For a weight-space point
the weights are rebuilt in place in one fused pass by `space.merge.Interpolator` (fp32 accumulation)
inside one reusable model; a DExperts point keeps θ0, θ+ and θ− apart and ensembles their logits.

Per sample, from the configured scorer plug-ins (`lmlerp.score.scorers`): positive score (Eq. 6),
grammar acceptability in [0, 1], and — for the first `perplexity_samples` samples of each
prompt — conditional perplexity under the judge LM; each sample carries its prompt's kind
(neutral / positive / negative / fixed). Per point, the model's own metrics: NLL on the positive
and negative test sentences (Fig 8) and next-token probabilities of the configured words after
"The movie was" (Fig 4). Means over samples, per kind and pooled, with their bootstrap intervals
are the aggregation's job (`lmlerp.evaluate.tables`): it sees every point's samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.generate import combiners, sampler
from lmlerp.io import tokenizer as tok
from lmlerp.io.atomic import atomic_path, read_parquet
from lmlerp.score import perplexity, scorers
from lmlerp.space import families, merge, methods, paths, recipes
from lmlerp.train.loss import sentence_nll

FIG4_PROMPT = "The movie was"
DEXPERTS = paths.DEXPERTS


@dataclass
class Data:
    """The fixed inputs of every point: prompts, test sentences, words for Fig 4."""

    prompts: pd.DataFrame
    positive_test: list[str]
    negative_test: list[str]
    words: Mapping[str, Sequence[str]]


def score_samples(
    samples: pd.DataFrame,
    judges: scorers.Scorers,
    settings: Mapping[str, Any],
    prompts: pd.DataFrame,
) -> pd.DataFrame:
    """Add the prompt's kind, positive_score, grammar (acceptability in [0, 1]) and, for the first
    `perplexity_samples` samples of each prompt, perplexity (NaN for the others)."""
    texts = samples.continuation.tolist()
    samples = samples.assign(
        kind=samples.prompt_id.map(dict(zip(prompts.prompt_id, prompts.kind, strict=True))),
        positive_score=judges.sentiment.positive_score(texts),
        grammar=judges.grammar.acceptability(texts),
    )
    scored = samples.sample_id < settings["perplexity_samples"]
    perplexity = np.full(len(samples), np.nan)
    perplexity[scored.to_numpy()] = judges.judge_lm.perplexity(
        samples.prompt[scored].tolist(), samples.continuation[scored].tolist()
    )
    return samples.assign(perplexity=perplexity)


def point_metrics(
    model: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase,
    data: Data,
    batch_size: int,
) -> dict[str, float]:
    """The model's own metrics at a point: test NLLs and Fig-4 word probabilities.

    `model` is None for DExperts points (no single weight vector): they are then NaN.
    """
    nan = float("nan")
    words = [w for ws in data.words.values() for w in ws]
    if model is None:
        return {"nll_pos": nan, "nll_neg": nan, **{f"p_{w}": nan for w in words}}
    device = str(next(model.parameters()).device)  # stays put: a claimed GPU; its weights are views
    row = {
        f"nll_{side}": sentence_nll(model, tokenizer, texts, batch_size=batch_size, device=device)
        for side, texts in (("pos", data.positive_test), ("neg", data.negative_test))
    }
    probabilities, _ = perplexity.next_token_probabilities(model, tokenizer, FIG4_PROMPT, words)
    row.update({f"p_{w}": float(probabilities[w]) for w in words})
    return row


def evaluate_points(
    family: str,
    points: Sequence[Mapping[str, Any]],
    bases: Mapping[str, PreTrainedModel],
    tokenizer: PreTrainedTokenizerBase,
    judges: scorers.Scorers,
    data: Data,
    sampling: Mapping[str, Any],
    settings: Mapping[str, Any],
    dexperts_filter_p: float | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    spec: Mapping[str, Any] | None = None,
) -> Iterator[tuple[Mapping[str, Any], pd.DataFrame, dict[str, float]]]:
    """(point, samples, metrics row) of each point in turn, as soon as it is done.

    The samples are `score_samples`'s frame and the row `point_metrics`'s, as they come out (no
    coordinates: `assemble` adds them). Each point is sampled with the same seed, so differences
    between points are the models'. The sampled models live on `device` with weights in `dtype`
    (rebuilt in float32, cast once). `spec` is a merge-method family's (`families.resolve`).
    """
    weights = getattr(torch, dtype)
    if family == DEXPERTS:
        experts = [bases[n].to(device=device, dtype=weights) for n in paths.FAMILY_BASES[DEXPERTS]]
    else:
        interpolator = merge.Interpolator(bases, device=device, dtype=weights)
    for point in tqdm(points, desc=f"evaluate {family}", mininterval=5, ascii=True):
        if family == DEXPERTS:
            models = experts
            combine = combiners.dexperts(point["alpha"], dexperts_filter_p)
            model = None
        else:
            model = rebuild(interpolator, family, point, spec)
            models, combine = [model], combiners.plain
        with torch.inference_mode():
            samples = sampler.generate_table(models, combine, data.prompts, tokenizer, **sampling)
            samples = score_samples(samples, judges, settings, data.prompts)
            row = point_metrics(model, tokenizer, data, settings["batch_size"])
        yield point, samples, row


def rebuild(
    interpolator: merge.Interpolator,
    family: str,
    point: Mapping[str, Any],
    spec: Mapping[str, Any] | None = None,
) -> PreTrainedModel:
    """A point's model, rebuilt in place: affine points by the fused θ = cᵀ·Θ, TIES, DARE and
    SLERP by `methods.merge` on the bases' rows of Θ."""
    coefficients, definition = families.point_weights(family, point, spec)
    if coefficients is not None:
        return interpolator.rebuild(coefficients)
    return interpolator.load(methods.merge(definition, interpolator.base_states()))


def assemble(
    family: str,
    points: Sequence[Mapping[str, Any]],
    results: Mapping[str, tuple[pd.DataFrame, Mapping[str, Any]]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples (one row per continuation) and point metrics (one row per point) of a chunk.

    `results` maps each point's label to its (samples, metrics row). Every row carries the
    family and the explicit coordinates (alpha, beta — NaN when unused), in `points` order.
    """
    sample_tables, point_rows = [], []
    for point in points:
        samples, row = results[point["label"]]
        meta = {
            "family": family,
            "point": point["label"],
            "alpha": point.get("alpha", float("nan")),  # a lone mergekit point has none
            "beta": point.get("beta", float("nan")),
        }
        sample_tables.append(samples.assign(**meta))
        point_rows.append({**meta, **row})
    return pd.concat(sample_tables, ignore_index=True), pd.DataFrame(point_rows)


def write_recipes(
    family: str,
    points: Sequence[Mapping[str, Any]],
    base_dirs: Mapping[str, str],
    out: Path,
    bases: Mapping[str, PreTrainedModel] | None = None,
    digests: Mapping[str, str] | None = None,
    spec: Mapping[str, Any] | None = None,
) -> None:
    """One `recipe.json` per weight-space point (bases, their sha256, coefficients), atomically.

    With `bases` given (config `evaluation.materialize: weights`), each point's weights are also
    written next to its recipe as a safetensors `save_pretrained` directory `model/` — for
    export and small models; at scale a recipe is enough, the evaluation rebuilds in memory.
    DExperts points combine logits, not weights, so their directory stays empty. `digests`
    (base name → weights sha256) spares hashing the bases again when the caller has. `spec`:
    a merge-method family's (`families.resolve`), whose recipes carry method and params.
    """
    with atomic_path(out, directory=True) as tmp:
        if family == DEXPERTS:
            return
        recipes.check_compatible(base_dirs)  # once per job: every point uses these bases
        if digests is None:
            digests = {name: recipes.weights_sha256(d) for name, d in base_dirs.items()}
        if spec is not None:  # a merge-method family: method and params in each recipe
            for point in points:
                recipe = recipes.Recipe.of_merge(
                    family, families.point_coordinates(spec, point),
                    families.point_merge(spec, point), base_dirs, digests,
                )  # fmt: skip
                recipe.write(tmp / point["label"] / "recipe.json")
                if bases is not None:
                    recipes.materialize(recipe, tmp / point["label"] / "model", bases=bases)
            return
        wanted = {p["label"] for p in points}
        coordinates = {k: sorted({p[k] for p in points}) for k in points[0] if k != "label"}
        for point in paths.points(family, coordinates):
            if point.label in wanted:
                recipe = recipes.Recipe.build(point, base_dirs, digests)
                recipe.write(tmp / point.label / "recipe.json")
                if bases is not None:
                    recipes.materialize(recipe, tmp / point.label / "model", bases=bases)


def load_judges(
    inputs: Mapping[str, str],
    settings: Mapping[str, Any],
    scorer_settings: Mapping[str, Any],
    device: str = "cpu",
    dtype: str = "float32",
) -> tuple[PreTrainedTokenizerBase, scorers.Scorers]:
    """The tokenizer and the scorers of an evaluation job, from its input files.

    `inputs` names theta0 (its tokenizer) and the model directory of each scorer that reads one
    (sentiment, grammar, judge_lm). The scorers run on `device`, in bf16 on CUDA when `dtype` is
    bfloat16 (`scorers.load`).
    """
    tokenizer = tok.load(inputs["theta0"])
    judges = scorers.load(
        scorer_settings,
        {score: inputs[score] for score in scorers.REGISTRY if score in inputs},
        device=device,
        dtype=dtype,
        judge_lm_dtype=settings["judge_lm_dtype"],
    )
    return tokenizer, judges


def load_data(inputs: Mapping[str, str], settings: Mapping[str, Any]) -> Data:
    """The fixed data of every point: the prompts and test sentences of inputs prompts, movie.

    Test NLLs use the first `nll_sentences` positive and negative test sentences (file order, the
    same at every point): the full test split costs more than sampling on a CPU.
    """
    movie = read_parquet(inputs["movie"], min_rows=1)
    test = movie[movie.split == "test"]
    return Data(
        prompts=read_parquet(inputs["prompts"], min_rows=1),
        positive_test=test[test.sentiment == "positive"].text.tolist()[: settings["nll_sentences"]],
        negative_test=test[test.sentiment == "negative"].text.tolist()[: settings["nll_sentences"]],
        words=settings["words"],
    )
