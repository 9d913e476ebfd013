"""Export one path point as a standalone Hugging Face model directory.

`python -m lmlerp export --config C --family g3 --alpha 0.4 --beta -0.8 --out DIR` rebuilds the
point from the finished bases of a run (the directories its evaluation recorded in the family's
recipes, relative to the working directory) exactly as the evaluation does: fp32 accumulation,
one pass, each base's sha256 verified (`recipes.materialize`). It writes a `save_pretrained`
directory: safetensors weights, the tokenizer, `generation_config.json` holding the run's
sampling settings (nucleus top-p, max_new_tokens), `recipe.json` and a README.md model card
naming the recipe. It loads with plain `transformers.AutoModelForCausalLM.from_pretrained(DIR)`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmlerp.io.atomic import atomic_path
from lmlerp.space import paths

EXPORTABLE = tuple(paths.FAMILIES)  # DExperts mixes logits: no single weight vector to export


class ExportError(ValueError):
    """A request that names no exportable point (unknown family, missing or bad coordinates)."""


def check_point(
    family: str, coords: Mapping[str, float | None], config: Mapping[str, Any]
) -> dict[str, float]:
    """The coordinates of a valid request, or ExportError naming the valid choices."""
    configured = [f for f in EXPORTABLE if f in config["paths"]]
    if family not in configured:
        raise ExportError(f"unknown family '{family}'; choose one of {', '.join(configured)}")
    _, names = paths.family(family)
    extra = [n for n, v in coords.items() if v is not None and n not in names]
    if extra:
        raise ExportError(f"family '{family}' takes only {', '.join(names)}, not {extra[0]}")
    out = {}
    for name in names:
        value = coords.get(name)
        if value is None or not math.isfinite(value):
            raise ExportError(f"family '{family}' needs a finite --{name}, got {value}")
        out[name] = float(value)
    return out


def base_dirs(results: str | os.PathLike, family: str) -> dict[str, str]:
    """The base directories a finished run combined for `family`, as its recipes record them
    (`<results>/evaluate/<family>/<chunk>/recipes/<point>/recipe.json`)."""
    found = sorted(Path(results, "evaluate", family).glob("*/recipes/*/recipe.json"))
    if not found:
        raise ExportError(f"no finished {family} point under {results}: run the workflow first")
    recipe = json.loads(found[0].read_text())
    return {name: entry["path"] for name, entry in recipe["bases"].items()}


def export_point(
    family: str,
    coords: Mapping[str, float],
    config: Mapping[str, Any],
    out: str | os.PathLike,
    results: str | os.PathLike,
) -> Path:
    """Write the point (family, coords) of the run under `results` (configured by `config`) to
    `out`, with the bases its recipes name; return `out`."""
    import torch
    from transformers import GenerationConfig

    from lmlerp.io import tokenizer as tok
    from lmlerp.space import recipes

    point = paths.points(family, {k: [v] for k, v in coords.items()})[0]
    recipe = recipes.Recipe.build(point, base_dirs(results, family))
    first = recipe.bases[next(iter(recipe.bases))]["path"]
    tokenizer = tok.load(first)
    with atomic_path(out, directory=True) as tmp:
        with torch.inference_mode():
            recipes.materialize(recipe, tmp / "model")  # verifies every base's sha256
        for item in (tmp / "model").iterdir():
            item.rename(tmp / item.name)
        (tmp / "model").rmdir()
        generation_config(config["generation"], tokenizer, GenerationConfig).save_pretrained(tmp)
        recipe.write(tmp / "recipe.json")
        (tmp / "README.md").write_text(model_card(recipe, config["generation"]))
    return Path(out)


def generation_config(sampling: Mapping[str, Any], tokenizer: Any, factory: Any) -> Any:
    """The run's sampling settings as a `GenerationConfig` (nucleus top-p, max_new_tokens).

    The prompts were prefixed with EOS in the evaluation (`generate.sampler.encode_prompts`): a
    user should do the same (`bos_token_id` says which token).
    """
    top_p = sampling["top_p"]
    return factory(
        do_sample=True,
        top_p=1.0 if top_p is None else top_p,
        top_k=0,
        max_new_tokens=sampling["max_new_tokens"],
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )


def model_card(recipe: Any, sampling: Mapping[str, Any]) -> str:
    """A README.md naming the recipe: family, coordinates, coefficients, bases with sha256."""
    coords = ", ".join(f"{k} = {v}" for k, v in recipe.coords.items())
    lines = [
        f"# {recipe.family} point {recipe.label}",
        "",
        f"A point of the path family `{recipe.family}` ({coords}) of lmlerp, a reproduction of",
        "Rofin et al. 2022, *Linear interpolation in parameter space is good enough for",
        "fine-tuned language models* (https://arxiv.org/abs/2211.12092): the weights are the",
        "affine combination θ = Σ_r c_r·θ_r of the bases below, accumulated in float32.",
        "",
        "| base | coefficient c_r | path | weights sha256 |",
        "|---|---|---|---|",
        *(
            f"| {name} | {recipe.coefficients[name]!r} | {entry['path']} | {entry['sha256']} |"
            for name, entry in recipe.bases.items()
        ),
        "",
        "Sampling as evaluated (generation_config.json): nucleus top-p "
        f"{sampling['top_p']}, at most {sampling['max_new_tokens']} new tokens, prompts prefixed "
        "with the EOS token.",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'model = AutoModelForCausalLM.from_pretrained("DIR")',
        'tokenizer = AutoTokenizer.from_pretrained("DIR")',
        "```",
        "",
    ]
    return "\n".join(lines)
