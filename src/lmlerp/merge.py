"""Weight arithmetic along paths: checked fp32 combination of bases, and recipes.

A point is stored as a small `Recipe` (family, coordinates, coefficients, and the sha256 of every
base it combines) rather than as weights: 400 GPT-2 Large points would be ~600 GB (DESIGN §2).
`combine` rebuilds the weights, θ = Σ_r c_r·θ_r, accumulating in float32 and casting once;
`materialize` does it from a recipe, in memory or as a safetensors directory.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from lmlerp import checkpoints
from lmlerp import tokenizer as tok
from lmlerp.atomic import write_json
from lmlerp.paths import Point, coefficients, label

# --- tensor arithmetic -----------------------------------------------------------------------


def _check_bases(
    bases: Mapping[str, Mapping[str, torch.Tensor]], used: Sequence[str]
) -> Mapping[str, torch.Tensor]:
    """Check the bases `used` before any arithmetic; return the reference (first) state dict."""
    missing = [name for name in used if name not in bases]
    if missing:
        raise ValueError(f"no base named {missing}; available bases: {sorted(bases)}")
    if not used:
        raise ValueError("no coefficients: a point combines at least one base")
    first = used[0]
    reference = bases[first]
    for name in used[1:]:
        state = bases[name]
        for tensor in reference:
            if tensor not in state:
                raise ValueError(f"base '{name}' lacks tensor '{tensor}' (present in '{first}')")
        for tensor in state:
            if tensor not in reference:
                raise ValueError(f"base '{name}' has tensor '{tensor}' that '{first}' lacks")
        for tensor, value in reference.items():
            if state[tensor].shape != value.shape:
                raise ValueError(
                    f"tensor '{tensor}' has shape {tuple(value.shape)} in base '{first}' but "
                    f"{tuple(state[tensor].shape)} in base '{name}'"
                )
            if state[tensor].is_floating_point() != value.is_floating_point():
                raise ValueError(
                    f"tensor '{tensor}' is {value.dtype} in base '{first}' but "
                    f"{state[tensor].dtype} in base '{name}'"
                )
    for name in used:
        checkpoints.check_finite(bases[name], f"base '{name}'")
    return reference


def _check_buffers(bases: Mapping[str, Mapping[str, torch.Tensor]], used: Sequence[str]) -> None:
    """Integer and bool buffers are not weights: they must be equal in every base (copied)."""
    for tensor, value in bases[used[0]].items():
        if value.is_floating_point():
            continue
        for name in used[1:]:
            if not torch.equal(bases[name][tensor].to(value.device), value):
                raise ValueError(
                    f"integer/bool buffer '{tensor}' differs between bases '{used[0]}' and "
                    f"'{name}'; buffers are copied, not combined"
                )


def combine(
    bases: Mapping[str, Mapping[str, torch.Tensor]],
    coefficients: Mapping[str, float],
    out_dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """The weights θ = Σ_r c_r·θ_r of one point, tensor by tensor.

    Every base named in `coefficients` is checked first (present, same tensor names, same shapes,
    finite), so that a bad merge fails before any arithmetic and names the culprit (DESIGN §5).
    Each tensor is accumulated in float32 (float64 if any base holds it in float64) in one pass
    over the bases and cast once to `out_dtype`. Integer and bool buffers are not weights: they
    must be equal in every base and are copied. Coefficients are used as given, never divided by
    their sum (which would change a non-affine combination and divide by zero at sum 0).
    Tensors that alias each other in every base (GPT-2's tied `lm_head.weight` and
    `transformer.wte.weight`) are combined once and alias in the result too.
    """
    used = list(coefficients)
    reference = _check_bases(bases, used)
    _check_buffers(bases, used)
    out: dict[str, torch.Tensor] = {}
    done: dict[tuple, torch.Tensor] = {}
    for tensor, value in reference.items():
        values = [bases[name][tensor] for name in used]
        if not value.is_floating_point():
            out[tensor] = value.clone()
            continue
        alias = tuple((v.data_ptr(), v.dtype, tuple(v.shape), v.stride()) for v in values)
        if alias in done:
            out[tensor] = done[alias]
            continue
        wide = any(v.dtype == torch.float64 for v in values)
        acc = values[0].to(torch.float64 if wide else torch.float32) * coefficients[used[0]]
        for name, other in zip(used[1:], values[1:], strict=True):
            acc.add_(other.to(device=acc.device, dtype=acc.dtype), alpha=coefficients[name])
        out[tensor] = done[alias] = acc.to(out_dtype)
    return out


class Interpolator:
    """One model whose weights are rewritten in place, point after point: θ = Σ_r c_r·θ_r.

    An evaluation job walks many points of one family over the same few bases (DESIGN §2, §6).
    The bases are checked once (`combine`'s checks), their floating-point tensors laid out once
    as the rows of a (R, N) float32 matrix Θ on the target device, and the target model's
    parameters and float buffers re-pointed at views of one flat (N,) buffer. A point is then a
    single fused pass, the vector–matrix product θ = cᵀ·Θ with float32 accumulation, written
    straight into the model (or into a float32 scratch buffer cast once when the model runs in
    bf16): R·N·4 bytes read and N·bytes(dtype) written, no disk, no allocation of weight size.
    Tied tensors (GPT-2's `lm_head.weight` and `transformer.wte.weight`) are one column range,
    so they stay tied. Bases that a point does not name get coefficient 0.
    """

    def __init__(
        self,
        bases: Mapping[str, PreTrainedModel],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.names = list(bases)
        states = {name: model.state_dict() for name, model in bases.items()}
        _check_bases(states, self.names)
        _check_buffers(states, self.names)
        self.device, self.dtype = torch.device(device), dtype
        self.model = copy.deepcopy(bases[self.names[0]]).to(self.device).eval()
        tensors: dict[int, tuple[str, torch.Tensor]] = {}  # unique float tensors by identity
        for key, value in self.model.state_dict(keep_vars=True).items():
            if value.is_floating_point():
                tensors.setdefault(id(value), (key, value))
        total = sum(value.numel() for _, value in tensors.values())
        # float32 rows even for bf16 models: the combination is accumulated at full precision
        self.stack = torch.empty((len(self.names), total), dtype=torch.float32, device=device)
        self.flat = torch.empty(total, dtype=dtype, device=device)
        self.scratch = None if dtype == torch.float32 else torch.empty_like(self.stack[0])
        offset = 0
        for key, value in tensors.values():
            n = value.numel()
            for row, name in enumerate(self.names):
                self.stack[row, offset : offset + n] = states[name][key].reshape(-1)
            value.data = self.flat[offset : offset + n].view(value.shape)
            offset += n
        self.flat.copy_(self.stack[0])  # the first base until `rebuild`
        self.coefficients = torch.zeros(len(self.names), dtype=torch.float32)

    @property
    def nbytes(self) -> int:
        """Bytes one rebuild must move at least: every base row read, the weights written once."""
        return self.stack.numel() * self.stack.element_size() + (
            self.flat.numel() * self.flat.element_size()
        )

    @torch.no_grad()
    def rebuild(self, coefficients: Mapping[str, float]) -> PreTrainedModel:
        """Write θ = Σ_r c_r·θ_r into the model's parameters and return the model."""
        unknown = [name for name in coefficients if name not in self.names]
        if unknown:
            raise ValueError(f"no base named {unknown}; available bases: {self.names}")
        for row, name in enumerate(self.names):
            self.coefficients[row] = float(coefficients.get(name, 0.0))
        # torch.mv, not np.dot: numpy's threaded BLAS took 5× longer on a busy 2-core machine
        c = self.coefficients.to(self.device, non_blocking=True)
        if self.scratch is None:
            torch.mv(self.stack.T, c, out=self.flat)
        else:
            torch.mv(self.stack.T, c, out=self.scratch)
            self.flat.copy_(self.scratch)  # the one cast
        return self.model


# --- compatibility ---------------------------------------------------------------------------

# config.json keys that fix the tensor layout of GPT-2-like models (dropout may differ).
ARCHITECTURE = ("model_type", "n_layer", "n_embd", "n_head", "vocab_size", "n_positions")


def check_compatible(base_dirs: Mapping[str, str | os.PathLike]) -> None:
    """Check that checkpoint directories share architecture and tokenizer before merging them.

    Compares the `ARCHITECTURE` fields of config.json (those present in either file) and the
    tokenizer fingerprints; ValueError names both bases and the differing field (or 'tokenizer').
    """
    items = [(name, Path(directory)) for name, directory in base_dirs.items()]
    if not items:
        return
    first, first_dir = items[0]
    config = json.loads((first_dir / "config.json").read_text())
    vocab = tok.fingerprint(tok.load(first_dir))
    for name, directory in items[1:]:
        other = json.loads((directory / "config.json").read_text())
        for field in ARCHITECTURE:
            if (field in config or field in other) and config.get(field) != other.get(field):
                raise ValueError(
                    f"bases '{first}' ({first_dir}) and '{name}' ({directory}) differ in "
                    f"'{field}': {config.get(field)!r} vs {other.get(field)!r}"
                )
        if tok.fingerprint(tok.load(directory)) != vocab:
            raise ValueError(
                f"bases '{first}' ({first_dir}) and '{name}' ({directory}) differ in 'tokenizer' "
                "(different vocabularies)"
            )


# --- recipes ---------------------------------------------------------------------------------


def weights_sha256(directory: str | os.PathLike) -> str:
    """sha256 of a checkpoint's weights: of `model.safetensors` (what `sha256sum` prints), or of
    all its `*.safetensors` shards concatenated in name order when the checkpoint is sharded."""
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise checkpoints.CheckpointError(f"{directory}: no safetensors weights")
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A path point as data: family, coordinates, coefficients and the bases it combines.

    `bases` maps each base name to {"path": checkpoint directory, "sha256": weights_sha256(path)};
    its order is the coefficients' order, and the first base gives the model class, config and
    tokenizer of the result. Paths are stored as given (relative to the working directory).
    """

    family: str
    coords: dict[str, float]
    label: str
    coefficients: dict[str, float]
    bases: dict[str, dict[str, str]]

    def __post_init__(self) -> None:
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
        for name, entry in self.bases.items():
            if set(entry) != {"path", "sha256"}:
                raise ValueError(f"recipe base '{name}' needs exactly 'path' and 'sha256'")

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

    def write(self, path: str | os.PathLike) -> None:
        """Write the recipe as JSON, atomically (floats are written in their exact repr)."""
        write_json(path, dataclasses.asdict(self))

    @classmethod
    def read(cls, path: str | os.PathLike) -> Recipe:
        """Read a recipe written by `write`; ValueError on missing or unknown keys."""
        data: dict[str, Any] = json.loads(Path(path).read_text())
        fields = [f.name for f in dataclasses.fields(cls)]
        if set(data) != set(fields):
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
    state = combine(states, recipe.coefficients)
    first = next(iter(recipe.bases))
    model = copy.deepcopy(bases[first])
    model.load_state_dict(state, strict=True)  # copies values; tied weights stay tied
    model.eval()
    if out_dir is not None:
        checkpoints.save(model, tok.load(recipe.bases[first]["path"]), out_dir)
    return state, model
