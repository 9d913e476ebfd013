"""Checkpoints as Hugging Face `save_pretrained` directories with safetensors — never pickles.

Loading refuses `.bin` weights (which would need unpickling), never passes `trust_remote_code`,
reads the safetensors headers first (a truncated file, or a tensor missing or of another shape
than config.json implies, is named — transformers would re-initialise it or fail with a table),
and checks every tensor for NaN/inf so that a broken base is named before work is wasted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.io.atomic import atomic_path


class CheckpointError(ValueError):
    """A checkpoint that cannot be used safely."""


def check_finite(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise CheckpointError naming the first tensor that holds NaN or inf."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{where}: tensor '{name}' contains NaN or inf values")


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: str | Path) -> None:
    """Write model and tokenizer as one `save_pretrained` directory (safetensors), atomically."""
    check_finite(model.state_dict(), str(directory))
    with atomic_path(directory, directory=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def require_safetensors(directory: str | Path) -> None:
    """Raise CheckpointError unless `directory` holds safetensors weights (pickles are refused).

    Transformers would fall back to `pytorch_model.bin` (a pickle that can run code when
    loaded) if no safetensors file is present, so the check comes before `from_pretrained`.
    """
    directory = Path(directory)
    if not any(directory.glob("*.safetensors")):
        pickled = sorted(p.name for p in directory.glob("*.bin")) + sorted(
            p.name for p in directory.glob("*.pt")
        )
        hint = f" (found {', '.join(pickled)}, which would need unpickling)" if pickled else ""
        raise CheckpointError(f"{directory}: no safetensors weights{hint}")


def load(directory: str | Path, model_class=GPT2LMHeadModel) -> PreTrainedModel:
    """Load a safetensors checkpoint directory in float32; refuse pickled weights."""
    directory = Path(directory)
    require_safetensors(directory)
    check_tensors(directory, model_class)
    model = model_class.from_pretrained(
        str(directory), use_safetensors=True, dtype=torch.float32, trust_remote_code=False
    )
    check_finite(model.state_dict(), str(directory))
    return model.eval()


def _file_shapes(directory: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from the safetensors headers; CheckpointError names a broken file."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(directory.glob("*.safetensors")):
        try:
            with safe_open(path, framework="pt") as handle:  # validates header against file size
                for name in handle.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except Exception as error:  # safetensors raises its own SafetensorError, or OSError
            raise CheckpointError(f"{path}: unreadable safetensors file ({error})") from error
    return shapes


def check_tensors(directory: str | Path, model_class=GPT2LMHeadModel) -> None:
    """Compare the weight files with the tensors config.json implies, without loading them.

    Raises CheckpointError naming the first tensor that is missing, unexpected, or of another
    shape. Tied tensors (GPT-2's `lm_head.weight` is `transformer.wte.weight`) are stored once.
    """
    directory = Path(directory)
    found = _file_shapes(directory)
    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=False)
    build = getattr(model_class, "from_config", None) or model_class  # Auto* classes need it
    with torch.device("meta"):  # shapes only, no memory
        skeleton = build(config)
    expected, seen = {}, set()
    for name, tensor in skeleton.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:  # the first name of a tied tensor is the stored one
            seen.add(id(tensor))
            expected[name] = tuple(tensor.shape)
    for name, shape in expected.items():
        if name not in found and not _stored_under_alias(name, found, skeleton):
            raise CheckpointError(f"{directory}: tensor '{name}' is missing from the weights")
        if name in found and found[name] != shape:
            raise CheckpointError(
                f"{directory}: tensor '{name}' has shape {found[name]} in the weights but "
                f"config.json implies {shape}"
            )
    known = set(skeleton.state_dict())
    unexpected = sorted(set(found) - known)
    if unexpected:
        raise CheckpointError(f"{directory}: unexpected tensor '{unexpected[0]}' in the weights")


def _stored_under_alias(name: str, found: Mapping, skeleton: torch.nn.Module) -> bool:
    """Whether a tied tensor `name` is stored under another of its names."""
    state = skeleton.state_dict(keep_vars=True)
    return any(other in found and state[other] is state[name] for other in state if other != name)
