"""Checkpoints as Hugging Face `save_pretrained` directories with safetensors — never pickles.

Loading refuses `.bin` weights (which would need unpickling), never passes `trust_remote_code`,
and checks every tensor for NaN/inf so that a broken base is named before work is wasted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from lmlerp.atomic import atomic_path


class CheckpointError(ValueError):
    """A checkpoint that cannot be used safely."""


def gpt2(vocab_size: int, eos_id: int, arch: Mapping[str, int], seed: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 (Radford et al. 2019) of the configured shape, dropout off."""
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=arch["n_positions"],
        n_embd=arch["n_embd"],
        n_layer=arch["n_layer"],
        n_head=arch["n_head"],
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


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
    model = model_class.from_pretrained(
        str(directory), use_safetensors=True, dtype=torch.float32, trust_remote_code=False
    )
    check_finite(model.state_dict(), str(directory))
    return model.eval()
