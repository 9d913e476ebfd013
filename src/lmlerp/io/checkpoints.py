"""Checkpoints as Hugging Face `save_pretrained` directories with safetensors — never pickles.

Loading refuses `.bin` weights (which would need unpickling), never passes `trust_remote_code`,
reads the safetensors headers first (a truncated file, or a tensor missing or of another shape
than config.json implies, is named — transformers would re-initialise it or fail with a table),
and checks every tensor for NaN/inf so that a broken base is named before work is wasted.
Bases load through `AutoModelForCausalLM`, so θ0 may be any causal LM that transformers knows
without remote code (GPT-2, Llama, Qwen, …); config.json's `model_type` picks the class.

Hub layouts are read as well as `save_pretrained` ones (`model_shapes`): the hub's GPT-2 files
(gpt2-large, gpt2-xl, distilgpt2) hold `GPT2Model`'s names without the `transformer.` prefix
(`h.0.attn.c_attn.weight`, `wte.weight`) and no `lm_head` (tied to `wte`), large models come as
shards with a `model.safetensors.index.json`, and old files carry constant buffers that the
current classes no longer hold. Every stored name is mapped to the model class's own name, as
transformers' `from_pretrained` maps it, so a hub θ0 combines with θ± written here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lmlerp.io.atomic import atomic_path

INDEX = "model.safetensors.index.json"  # the shard map of a sharded checkpoint
# Constants that older transformers saved with the weights and the current classes rebuild
# themselves: GPT-2's causal masks `h.N.attn.bias` (in the hub's gpt2 files) and `attn.masked_bias`
# (https://github.com/huggingface/transformers/issues/24581), BERT/RoBERTa's
# `embeddings.position_ids`. `from_pretrained` drops them; so does `model_shapes`, nothing else.
LEGACY_BUFFERS = re.compile(r"(?:^|\.)(?:attn\.(?:masked_)?bias|embeddings\.position_ids)$")


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
    if not weight_files(directory):
        pickled = sorted(p.name for p in directory.glob("*.bin")) + sorted(
            p.name for p in directory.glob("*.pt")
        )
        hint = f" (found {', '.join(pickled)}, which would need unpickling)" if pickled else ""
        raise CheckpointError(f"{directory}: no safetensors weights{hint}")


def load(directory: str | Path, model_class=AutoModelForCausalLM) -> PreTrainedModel:
    """Load a safetensors checkpoint directory in float32 as `model_class` (by default the
    causal LM its config.json names); refuse pickled weights."""
    directory = Path(directory)
    check_tensors(directory, model_class)  # refuses pickled weights first
    model = model_class.from_pretrained(
        str(directory), use_safetensors=True, dtype=torch.float32, trust_remote_code=False
    )
    check_finite(model.state_dict(), str(directory))
    return model.eval()


def weight_files(directory: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint: the shards its index names, else every
    `*.safetensors` file. CheckpointError names an unreadable index or a missing shard."""
    directory = Path(directory)
    index = directory / INDEX
    if not index.is_file():
        return sorted(directory.glob("*.safetensors"))
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{index}: not a safetensors index ({error!r})") from error
    for shard in shards:
        if not isinstance(shard, str) or Path(shard).name != shard:
            raise CheckpointError(f"{index}: shard {shard!r} is not a file name in {directory}")
        if not (directory / shard).is_file():
            raise CheckpointError(f"{index}: shard '{shard}' is missing from {directory}")
    return [directory / shard for shard in shards]


def _file_shapes(directory: Path) -> dict[str, tuple[int, ...]]:
    """Stored tensor name → shape from the safetensors headers; CheckpointError names a broken
    file."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in weight_files(directory):
        try:
            with safe_open(path, framework="pt") as handle:  # validates header against file size
                for name in handle.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except Exception as error:  # safetensors raises its own SafetensorError, or OSError
            raise CheckpointError(f"{path}: unreadable safetensors file ({error})") from error
    return shapes


def model_shapes(
    directory: str | Path, known: Collection[str], prefix: str
) -> dict[str, tuple[tuple[int, ...], str]]:
    """The stored tensors under the model class's names: {model name: (shape, stored name)}.

    A stored name is the model's own (`save_pretrained`), or a base-model name that gains the
    class's `base_model_prefix` (hub GPT-2: `wte.weight` → `transformer.wte.weight`). Legacy
    constant buffers (`LEGACY_BUFFERS`) are dropped. CheckpointError names a tensor that maps
    to no name of the model, or to one that another stored tensor already took.
    """
    directory = Path(directory)
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for stored, shape in _file_shapes(directory).items():
        name = stored if stored in known or not prefix else f"{prefix}.{stored}"
        if name not in known:
            if LEGACY_BUFFERS.search(stored):
                continue
            raise CheckpointError(f"{directory}: unexpected tensor '{stored}' in the weights")
        if name in out:
            raise CheckpointError(
                f"{directory}: tensor '{name}' is stored twice, as '{out[name][1]}' and '{stored}'"
            )
        out[name] = (shape, stored)
    return out


def check_tensors(
    directory: str | Path, model_class=AutoModelForCausalLM
) -> dict[str, tuple[int, ...]]:
    """Compare the weight files with the tensors config.json implies, without loading them;
    return those tensors, {model name: shape}, a tied tensor under its first name only.

    Raises CheckpointError if there are no safetensors weights (`require_safetensors`), or
    naming the first tensor that is missing, unexpected, or of another shape. Tied tensors
    (GPT-2's `lm_head.weight` is `transformer.wte.weight`, a Llama's with `tie_word_embeddings`
    is `model.embed_tokens.weight`) are stored once; hub layouts (base-model names, shards,
    legacy buffers) are read by `model_shapes`.
    """
    directory = Path(directory)
    require_safetensors(directory)
    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=False)
    build = getattr(model_class, "from_config", None) or model_class  # Auto* classes need it
    with torch.device("meta"):  # shapes only, no memory
        skeleton = build(config)
    state = skeleton.state_dict(keep_vars=True)
    found = model_shapes(directory, set(state), skeleton.base_model_prefix)
    expected, seen = {}, set()
    for name, tensor in state.items():
        if id(tensor) not in seen:  # the first name of a tied tensor is the stored one
            seen.add(id(tensor))
            expected[name] = tuple(tensor.shape)
    for name, shape in expected.items():
        if name not in found and not _stored_under_alias(name, found, state):
            raise CheckpointError(f"{directory}: tensor '{name}' is missing from the weights")
        if name in found and found[name][0] != shape:
            stored = found[name][1]
            as_stored = "" if stored == name else f" (stored as '{stored}')"
            raise CheckpointError(
                f"{directory}: tensor '{name}'{as_stored} has shape {found[name][0]} in the "
                f"weights but config.json implies {shape}"
            )
    return expected


def _stored_under_alias(name: str, found: Mapping, state: Mapping[str, torch.Tensor]) -> bool:
    """Whether a tied tensor `name` is stored under another of its names."""
    return any(other in found and state[other] is state[name] for other in state if other != name)
