"""Tiny random Hugging Face models standing in for hub repositories (no network), written in
the hub's own layouts (`save_hub_layout`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from huggingface_hub import split_torch_state_dict_into_shards
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForSequenceClassification,
)

WORDS = ["the", "movie", "was", "good", "bad", "great", "boring", "awful", "fun", "a", "plot"]
WORDS += ["and", "but", "not", "very"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer: <pad> 0, <s> 1, </s> 2, <unk> 3, then WORDS.

    Like RoBERTa's, it wraps a text in <s> … </s> (so an empty text still has tokens) unless
    add_special_tokens=False, as the judge LM's perplexity asks.
    """
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=32,
    )


def hub_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The tensors a hub repository of `model` holds, under the hub's names.

    GPT-2 LMs (gpt2-large, gpt2-xl, distilgpt2): `GPT2Model`'s names (`h.0.attn.c_attn.weight`,
    `wte.weight`: no `transformer.` prefix, no `lm_head`, which is tied to `wte`) and the causal
    masks `h.N.attn.bias` that older transformers saved. Classifiers (the RoBERTa judges): the
    class's own names and the `embeddings.position_ids` older transformers saved.
    """
    if isinstance(model, GPT2LMHeadModel):
        state = dict(model.transformer.state_dict())
        n = model.config.n_positions
        mask = torch.tril(torch.ones(n, n)).view(1, 1, n, n)  # (1, 1, T, T), as the hub's files
        state.update({f"h.{i}.attn.bias": mask.clone() for i in range(model.config.n_layer)})
        return state
    state = dict(model.state_dict())
    positions = torch.arange(model.config.max_position_embeddings).unsqueeze(0)  # (1, P)
    state[f"{model.base_model_prefix}.embeddings.position_ids"] = positions
    return state


def save_hub_layout(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    directory: str | Path,
    max_shard_size: int | None = None,
) -> None:
    """Write `model` as its hub repository holds it (`hub_state`): one `model.safetensors`, or,
    with `max_shard_size` (bytes), shards and `model.safetensors.index.json`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.contiguous() for name, tensor in hub_state(model).items()}
    split = split_torch_state_dict_into_shards(state, max_shard_size=max_shard_size or 2**40)
    for file, names in split.filename_to_tensors.items():
        save_file({n: state[n] for n in names}, directory / file, metadata={"format": "pt"})
    if split.is_sharded:
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": split.tensor_to_filename}
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def save_classifier(directory, num_labels: int, bias: list[float] | None = None):
    """A random 1-layer RoBERTa classifier in hub layout; with `bias`, logits = bias for every
    input."""
    tokenizer = tiny_tokenizer()
    cfg = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        num_labels=num_labels,
    )
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(cfg).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.out_proj.weight.zero_()  # logits = out_proj.bias, whatever the text
            model.classifier.out_proj.bias.copy_(torch.tensor(bias))
    save_hub_layout(model, tokenizer, directory)
    return model, tokenizer


def save_causal_lm(directory, max_shard_size: int | None = None):
    """A random 2-layer GPT-2 LM in hub layout (the judge LM, GPT-2 XL at paper scale)."""
    tokenizer = tiny_tokenizer()
    cfg = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(1)
    model = GPT2LMHeadModel(cfg).eval()
    save_hub_layout(model, tokenizer, directory, max_shard_size)
    return model, tokenizer


def write_hub(root: Path, sentiment_bias: list[float] | None = None) -> None:
    """resources/hub stand-ins under `root`: sentiment (3 classes), grammar (2), judge_lm (in
    shards)."""
    save_classifier(root / "sentiment", 3, bias=sentiment_bias)
    save_classifier(root / "grammar", 2)
    save_causal_lm(root / "judge_lm", max_shard_size=20_000)
