"""The judge LM: GGUF → safetensors conversion and loading, on tiny Llamas written to tmp_path."""

import gguf
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from lmlerp.score import judge_lm

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 32, 2, 2, 1, 64
# Byte-level BPE as llama.cpp stores it ("Ġ" is the space byte): specials, letters, two merges.
TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *"abcdefghijklmnopqrstuvwxyz", "Ġ"]
TOKENS += ["th", "the", "Ġthe"]
MERGES = ["t h", "th e", "Ġ the"]


def write_tiny_gguf(path, *, tied: bool) -> None:
    """A random 2-layer Llama with a GPT-2-style tokenizer in llama.cpp's GGUF layout (fp32)."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(LAYERS)
    writer.add_context_length(64)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(TOKENS))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(TOKENS)
    writer.add_token_types([3] * 3 + [1] * (len(TOKENS) - 3))  # 3 = control, 1 = normal
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)  # no pad token: the conversion must pad with EOS
    writer.add_add_bos_token(False)

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (0.1 * rng.standard_normal(shape)).astype(np.float32))

    kv = KV_HEADS * HIDDEN // HEADS
    tensor("token_embd.weight", len(TOKENS), HIDDEN)
    tensor("output_norm.weight", HIDDEN)
    if not tied:
        tensor("output.weight", len(TOKENS), HIDDEN)
    for i in range(LAYERS):
        for name, shape in {
            "attn_norm": (HIDDEN,),
            "attn_q": (HIDDEN, HIDDEN),
            "attn_k": (kv, HIDDEN),
            "attn_v": (kv, HIDDEN),
            "attn_output": (HIDDEN, HIDDEN),
            "ffn_norm": (HIDDEN,),
            "ffn_gate": (FFN, HIDDEN),
            "ffn_up": (FFN, HIDDEN),
            "ffn_down": (HIDDEN, FFN),
        }.items():
            tensor(f"blk.{i}.{name}.weight", *shape)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def tiny_hf_dir(tmp_path):
    """A random tiny Llama and a word-level tokenizer, written with save_pretrained."""
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(61)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_load_gives_an_eval_model_in_the_asked_dtype(tiny_hf_dir, dtype):
    model, tokenizer = judge_lm.load(tiny_hf_dir, dtype=dtype)
    assert model.dtype == judge_lm.DTYPES[dtype]
    assert not model.training
    assert model.device == torch.device("cpu")
    assert tokenizer("w1 w2").input_ids == [4, 5]


def test_load_names_the_valid_dtypes(tiny_hf_dir):
    with pytest.raises(ValueError, match=r"'fp8'.*bfloat16"):
        judge_lm.load(tiny_hf_dir, dtype="fp8")


@pytest.mark.parametrize("tied", [True, False])
def test_convert_gguf_keeps_the_logits_and_writes_safetensors_only(tmp_path, tied):
    write_tiny_gguf(tmp_path / "tiny.gguf", tied=tied)
    judge_lm.convert_gguf(tmp_path / "tiny.gguf", tmp_path / "judge_lm")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["judge_lm", "tiny.gguf"]  # no temp dir
    files = {p.name for p in (tmp_path / "judge_lm").iterdir()}
    assert "model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl", ".gguf")) for name in files)

    model, tokenizer = judge_lm.load(tmp_path / "judge_lm", dtype="float32")
    assert "quantization_config" not in model.config.to_dict()
    assert model.config.tie_word_embeddings == tied
    for owner in (model.config, model.generation_config):
        assert (owner.bos_token_id, owner.eos_token_id, owner.pad_token_id) == (1, 2, 2)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "<|im_start|>",
        "<|im_end|>",
        "<|im_end|>",
    )

    reference = AutoModelForCausalLM.from_pretrained(
        tmp_path, gguf_file="tiny.gguf", dtype=torch.float32
    ).eval()
    reference_tokenizer = AutoTokenizer.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    ids = tokenizer("the cat sat", return_tensors="pt").input_ids
    assert (
        ids.tolist() == reference_tokenizer("the cat sat", return_tensors="pt").input_ids.tolist()
    )
    assert TOKENS[ids[0, 0]] == "the"  # the merges were applied
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=0, atol=0)
