"""Recipes: a path point as data, verifiable and rebuildable without storing its weights.

A point is stored as a small `Recipe` (family, coordinates, coefficients, and the sha256 of every
base it combines) rather than as weights: 400 GPT-2 Large points would be ~600 GB (DESIGN §2).
A point of a merge-method family (`families`: task arithmetic, TIES, DARE, SLERP, a mergekit
YAML) also carries its `method` and `params` (every base and number the merge uses); its
coefficients are the affine expansion where there is one (task arithmetic), else null.
`materialize` rebuilds the weights from a recipe with `merge.combine` or `methods.merge` (fp32
accumulation), in memory or as a safetensors directory; `check_compatible` refuses bases of
another architecture or tokenizer before any weight is read.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, PreTrainedModel

from lmlerp.io import checkpoints, digests
from lmlerp.io import tokenizer as tok
from lmlerp.io.atomic import write_json
from lmlerp.space import families, methods
from lmlerp.space.merge import combine
from lmlerp.space.paths import Point, coefficients, label

LINEAR = "linear"  # the method of the built-in families g1, g2, g3, decorrelated

# Config fields that fix a causal LM's tensors or its function, by their generic names; a
# config's `attribute_map` gives its own spelling (GPT-2: n_layer, n_embd, n_head, n_positions).
# Dropout may differ; a field a model type lacks is None in both bases of that type.
ARCHITECTURE = (
    "model_type", "vocab_size", "num_hidden_layers", "hidden_size", "num_attention_heads",
    "num_key_value_heads", "head_dim", "intermediate_size", "n_inner", "max_position_embeddings",
    "tie_word_embeddings", "hidden_act", "activation_function", "rope_parameters", "rms_norm_eps",
    "layer_norm_epsilon",
)  # fmt: skip


def check_compatible(base_dirs: Mapping[str, str | os.PathLike]) -> None:
    """Check that checkpoint directories share architecture and tokenizer before merging them.

    Reads config.json, the safetensors headers and the tokenizer, no weight: the `ARCHITECTURE`
    fields, then the tensors (names and shapes, `checkpoints.check_tensors`), then the tokenizer
    fingerprints. ValueError names both bases and the differing field (as the config spells
    it), tensor, or 'tokenizer'.
    """
    items = [(name, Path(directory)) for name, directory in base_dirs.items()]
    if not items:
        return
    first, first_dir = items[0]
    config = AutoConfig.from_pretrained(str(first_dir), trust_remote_code=False)
    tensors = checkpoints.check_tensors(first_dir)
    vocab = tok.fingerprint(tok.load(first_dir))
    for name, directory in items[1:]:
        where = f"bases '{first}' ({first_dir}) and '{name}' ({directory}) differ in"
        other = AutoConfig.from_pretrained(str(directory), trust_remote_code=False)
        for field in ARCHITECTURE:
            mine, theirs = getattr(config, field, None), getattr(other, field, None)
            if mine != theirs:
                spelt = config.attribute_map.get(field, field)
                raise ValueError(f"{where} '{spelt}': {mine!r} vs {theirs!r}")
        _check_same_tensors(where, tensors, checkpoints.check_tensors(directory))
        if tok.fingerprint(tok.load(directory)) != vocab:
            raise ValueError(f"{where} 'tokenizer' (different vocabularies)")


def _check_same_tensors(
    where: str, first: Mapping[str, tuple[int, ...]], other: Mapping[str, tuple[int, ...]]
) -> None:
    """ValueError naming the first tensor that one base lacks or holds in another shape."""
    for tensor in [*first, *(t for t in other if t not in first)]:
        if first.get(tensor) != other.get(tensor):
            raise ValueError(
                f"{where} tensor '{tensor}': {first.get(tensor)} vs {other.get(tensor)}"
            )


def weights_sha256(directory: str | os.PathLike) -> str:
    """sha256 of a checkpoint's weights: of `model.safetensors` (what `sha256sum` prints), or of
    its shards (those its index names) concatenated in name order when it is sharded."""
    files = checkpoints.weight_files(directory)
    if not files:
        raise checkpoints.CheckpointError(f"{directory}: no safetensors weights")
    digest = hashlib.sha256()
    for path in files:
        digests.update_with_file(digest, path)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A path point as data: family, coordinates, coefficients and the bases it combines.

    `bases` maps each base name to {"path": checkpoint directory, "sha256": weights_sha256(path)};
    its order is the coefficients' order, and the first base gives the model class, config and
    tokenizer of the result. Paths are stored as given (relative to the working directory).
    `method` and `params` are a merge-method point's (`families.point_merge`); a built-in
    family's recipe has method "linear", no params, and is written without the two keys.
    """

    family: str
    coords: dict[str, float]
    label: str
    coefficients: dict[str, float] | None
    bases: dict[str, dict[str, str]]
    method: str = LINEAR
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def merge(self) -> dict[str, Any] | None:
        """The point's {"method", "params"}, or None for a built-in family's point."""
        return {"method": self.method, "params": self.params} if self.params else None

    def __post_init__(self) -> None:
        for name, entry in self.bases.items():
            if set(entry) != {"path", "sha256"}:
                raise ValueError(f"recipe base '{name}' needs exactly 'path' and 'sha256'")
        if self.merge is not None:
            self._check_merge()
            return
        expected = coefficients(self.family, self.coords)
        if expected != self.coefficients:
            raise ValueError(
                f"recipe '{self.family}/{self.label}': coefficients {self.coefficients} are not "
                f"{self.family}({self.coords}) = {expected}"
            )
        if label(self.family, self.coords) != self.label:
            raise ValueError(
                f"recipe '{self.family}/{self.label}': label should be "
                f"'{label(self.family, self.coords)}'"
            )
        if list(self.bases) != list(self.coefficients):
            raise ValueError(
                f"recipe '{self.family}/{self.label}': bases {list(self.bases)} do not match "
                f"coefficients {list(self.coefficients)}"
            )

    def _check_merge(self) -> None:
        """A merge point's coefficients, bases and label follow from its method and params."""
        where = f"recipe '{self.family}/{self.label}'"
        expected = families.coefficients(self.merge)
        if expected != self.coefficients:
            raise ValueError(f"{where}: coefficients {self.coefficients} are not {expected}")
        if list(self.bases) != families.bases_of(self.merge):
            raise ValueError(f"{where}: bases {list(self.bases)} are not the merge's "
                             f"{families.bases_of(self.merge)}")  # fmt: skip
        if families.label(self.coords) != self.label:
            raise ValueError(f"{where}: label should be '{families.label(self.coords)}'")

    @classmethod
    def build(
        cls,
        point: Point,
        base_dirs: Mapping[str, str | os.PathLike],
        sha256: Mapping[str, str] | None = None,
    ) -> Recipe:
        """The recipe of `point`, hashing the bases it uses (after `check_compatible`).

        A job that builds many recipes from the same bases passes their digests in `sha256`
        (and checks compatibility once itself), so that each base is read once, not per point.
        """
        missing = [name for name in point.coefficients if name not in base_dirs]
        if missing:
            raise ValueError(
                f"point '{point.family}/{point.label}' needs bases {missing}; "
                f"available bases: {sorted(base_dirs)}"
            )
        used = {name: base_dirs[name] for name in point.coefficients}
        if sha256 is None:
            check_compatible(used)
            sha256 = {name: weights_sha256(directory) for name, directory in used.items()}
        bases = {name: {"path": str(path), "sha256": sha256[name]} for name, path in used.items()}
        return cls(point.family, dict(point.coords), point.label, dict(point.coefficients), bases)

    @classmethod
    def of_merge(
        cls,
        family: str,
        coords: Mapping[str, float],
        merge: Mapping[str, Any],
        base_dirs: Mapping[str, str | os.PathLike],
        sha256: Mapping[str, str] | None = None,
    ) -> Recipe:
        """The recipe of one point of a merge-method family (`families.point_merge`'s merge)."""
        used = families.bases_of(merge)
        missing = [name for name in used if name not in base_dirs]
        if missing:
            raise ValueError(f"point '{family}/{families.label(coords)}' needs bases {missing}; "
                             f"available bases: {sorted(base_dirs)}")  # fmt: skip
        dirs = {name: base_dirs[name] for name in used}
        if sha256 is None:
            check_compatible(dirs)
            sha256 = {name: weights_sha256(directory) for name, directory in dirs.items()}
        bases = {name: {"path": str(path), "sha256": sha256[name]} for name, path in dirs.items()}
        return cls(family, dict(coords), families.label(coords), families.coefficients(merge),
                   bases, merge["method"], dict(merge["params"]))  # fmt: skip

    def write(self, path: str | os.PathLike) -> None:
        """Write the recipe as JSON, atomically (floats are written in their exact repr)."""
        data = dataclasses.asdict(self)
        if self.merge is None:  # a built-in family's recipe keeps its five keys
            del data["method"], data["params"]
        write_json(path, data)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Recipe:
        """Read a recipe written by `write`; ValueError on missing or unknown keys."""
        data: dict[str, Any] = json.loads(Path(path).read_text())
        fields = [f.name for f in dataclasses.fields(cls)]
        if set(data) not in (set(fields), set(fields) - {"method", "params"}):
            raise ValueError(f"{path}: a recipe has exactly the keys {fields}, got {list(data)}")
        return cls(**data)

    def verify(self) -> None:
        """Recompute each base's sha256; ValueError naming the base whose weights changed."""
        for name, entry in self.bases.items():
            actual = weights_sha256(entry["path"])
            if actual != entry["sha256"]:
                raise ValueError(
                    f"recipe '{self.family}/{self.label}': base '{name}' ({entry['path']}) has "
                    f"changed since the recipe was written (sha256 {actual}, "
                    f"recipe says {entry['sha256']})"
                )


def materialize(
    recipe: Recipe,
    out_dir: str | os.PathLike | None = None,
    *,
    bases: Mapping[str, PreTrainedModel] | None = None,
) -> tuple[dict[str, torch.Tensor], PreTrainedModel]:
    """Rebuild a recipe's weights (fp32 accumulation, one pass) and a model holding them.

    Args:
        recipe: the point to build.
        out_dir: if given, the result is also written there as a safetensors `save_pretrained`
            directory with the first base's tokenizer.
        bases: models already loaded, keyed by base name, so that a job evaluating several points
            loads each base once; by default the recipe's bases are verified and loaded from disk.

    Returns:
        The combined state dict and a model of the first base's class and config holding it.
    """
    if bases is None:
        recipe.verify()
        bases = {name: checkpoints.load(entry["path"]) for name, entry in recipe.bases.items()}
    states = {name: bases[name].state_dict() for name in recipe.bases if name in bases}
    if recipe.coefficients is not None:
        state = combine(states, recipe.coefficients)
    else:
        state = methods.merge(recipe.merge, states)
    first = next(iter(recipe.bases))
    model = copy.deepcopy(bases[first])
    model.load_state_dict(state, strict=True)  # copies values; tied weights stay tied
    model.eval()
    if out_dir is not None:
        checkpoints.save(model, tok.load(recipe.bases[first]["path"]), out_dir)
    return state, model
