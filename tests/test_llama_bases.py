"""A Llama θ0 (rotary positions, no pad token, tied or untied embeddings) through every path a
base takes: loading and its checks, merges, fine-tuning, sampling and DExperts, perplexity."""

import copy
import math
import shutil

import pandas as pd
import pytest
import tiny_llama
import torch
from safetensors.torch import load_file, save_file

from lmlerp.evaluate import chunk
from lmlerp.generate import combiners, sampler
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.score import perplexity
from lmlerp.space import merge, paths
from lmlerp.space import recipes as point_recipes
from lmlerp.train import finetune, pretrain
from lmlerp.train.loss import sentence_nll

PROMPTS = ["The movie", "A", "This film was really quite", "Our critic felt"]
TIES = pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def bpe():
    return tiny_llama.tokenizer()


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def base_dirs(request, bpe, tmp_path_factory):
    """θ0, θ+, θ− as three Llama directories of one shape (seeds 0, 1, 2)."""
    root = tmp_path_factory.mktemp("tied" if request.param else "untied")
    names = ("theta0", "theta_pos", "theta_neg")
    return {
        name: tiny_llama.write(root / name, bpe, tied=request.param, seed=seed)
        for seed, name in enumerate(names)
    }


def is_tied(model) -> bool:
    return model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def sharp(model):
    """Large random weights (norm gains around 1): greedy output then depends on positions and
    padding, which the default initialisation (std 0.02) would hide."""
    model = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            weight.copy_(torch.randn(weight.shape, generator=generator) * 0.3)
            weight += name.endswith("norm.weight")
    return model


# loading and its checks ---------------------------------------------------------------------


def test_bases_load_as_llama_with_tensors_checked(base_dirs):
    loaded = checkpoints.load(base_dirs["theta0"])
    tied = loaded.config.tie_word_embeddings
    assert type(loaded).__name__ == "LlamaForCausalLM" and not loaded.training
    assert loaded.config.pad_token_id is None and not hasattr(loaded.config, "n_positions")
    assert is_tied(loaded) == tied
    shapes = checkpoints.check_tensors(base_dirs["theta0"])
    assert shapes["model.embed_tokens.weight"] == (len(tok.load(base_dirs["theta0"])), 32)
    assert shapes["model.layers.1.self_attn.k_proj.weight"] == (16, 32)  # 2 kv heads × 8
    assert ("lm_head.weight" in shapes) == (not tied)  # a tied head is stored once
    assert not any("position" in name for name in shapes)  # rotary: no table
    again = tiny_llama.model(tok.load(base_dirs["theta0"]), tied=tied, seed=0).state_dict()
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, again[name]), name


def test_a_missing_llama_tensor_is_named(base_dirs, tmp_path):
    broken = shutil.copytree(base_dirs["theta0"], tmp_path / "broken")
    state = load_file(broken / "model.safetensors")
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(checkpoints.CheckpointError, match=r"'model\.layers\.1\.mlp\.up_proj"):
        checkpoints.load(broken)
    with pytest.raises(checkpoints.CheckpointError, match=r"'model\.layers\.1\.mlp\.up_proj"):
        point_recipes.check_compatible({"theta0": base_dirs["theta0"], "broken": broken})
    (broken / "model.safetensors").rename(broken / "pytorch_model.bin")  # a pickle's place
    with pytest.raises(checkpoints.CheckpointError, match=r"no safetensors.*pytorch_model\.bin"):
        point_recipes.check_compatible({"theta0": base_dirs["theta0"], "broken": broken})


# merges ---------------------------------------------------------------------------------------


def test_g1_point_of_two_llama_bases_is_the_formula_per_tensor(base_dirs):
    """g1(α) = α·θ+ + (1−α)·θ− tensor by tensor, from `materialize` and from the fused
    `Interpolator`, and a tied head stays tied in both."""
    point = paths.points("g1", {"alpha": [0.3]})[0]
    recipe = point_recipes.Recipe.build(point, base_dirs)
    state, model = point_recipes.materialize(recipe)
    bases = {name: checkpoints.load(d) for name, d in base_dirs.items()}
    pos, neg = bases["theta_pos"].state_dict(), bases["theta_neg"].state_dict()
    assert set(state) == set(pos)
    for name, value in state.items():
        torch.testing.assert_close(value, 0.3 * pos[name] + 0.7 * neg[name], rtol=0, atol=1e-6)
    rebuilt = merge.Interpolator(bases).rebuild(point.coefficients)
    for name, value in rebuilt.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=1e-6)
    tied = bases["theta0"].config.tie_word_embeddings
    assert is_tied(model) == is_tied(rebuilt) == tied


def test_a_tied_point_is_saved_with_one_embedding(base_dirs, tmp_path):
    point = paths.points("g3", {"alpha": [0.5], "beta": [-0.5]})[0]
    recipe = point_recipes.Recipe.build(point, base_dirs)
    point_recipes.materialize(recipe, tmp_path / "point")
    stored = load_file(tmp_path / "point" / "model.safetensors")
    reloaded = checkpoints.load(tmp_path / "point")
    tied = reloaded.config.tie_word_embeddings
    assert ("lm_head.weight" in stored) == (not tied) and is_tied(reloaded) == tied


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tied": False}, r"'tie_word_embeddings': True vs False"),
        ({"num_key_value_heads": 4}, r"'num_key_value_heads': 2 vs 4"),
        ({"max_position_embeddings": 128}, r"'max_position_embeddings': 64 vs 128"),
        ({"attention_bias": True}, r"tensor 'model\.layers\.0\.self_attn\.q_proj\.bias': None"),
    ],
)
def test_other_llama_architectures_are_refused_naming_the_field(bpe, tmp_path, change, message):
    theta0 = tiny_llama.write(tmp_path / "theta0", bpe)
    other = tiny_llama.write(tmp_path / "other", bpe, **({"tied": True} | change))
    with pytest.raises(ValueError, match=r"'theta0'.*'other'.*" + message):
        point_recipes.check_compatible({"theta0": theta0, "other": other})


def test_a_gpt2_and_a_llama_base_are_refused_naming_the_model_type(bpe, tmp_path):
    theta0 = tiny_llama.write(tmp_path / "theta0", bpe)
    gpt2 = pretrain.gpt2(len(bpe), bpe.eos_token_id, {"n_layer": 2, "n_head": 2, "n_embd": 32,
                                                      "n_positions": 64}, seed=0)  # fmt: skip
    checkpoints.save(gpt2, tok.load(theta0), tmp_path / "gpt2")
    with pytest.raises(ValueError, match=r"'model_type': 'llama' vs 'gpt2'"):
        point_recipes.check_compatible({"theta0": theta0, "gpt2": tmp_path / "gpt2"})
    states = {"theta0": checkpoints.load(theta0).state_dict(), "gpt2": gpt2.state_dict()}
    with pytest.raises(ValueError, match=r"base 'gpt2' lacks tensor 'model\.embed_tokens"):
        merge.check_bases(states, ["theta0", "gpt2"])


# fine-tuning -------------------------------------------------------------------------------


def test_fine_tuning_a_llama_without_pad_token_lowers_its_loss(bpe):
    """A few steps on positive sentences with a tokenizer that has no pad token."""
    model = tiny_llama.model(bpe, tied=False, seed=0)
    texts = tiny_llama.TEXTS
    movie = pd.DataFrame({"text": texts, "sentiment": "positive", "split": "train"})
    movie.loc[::5, "split"] = "val"
    movie.loc[1::5, ["sentiment", "split"]] = ["negative", "val"]
    val = movie[(movie.sentiment == "positive") & (movie.split == "val")].text.tolist()
    before = sentence_nll(model, bpe, val)
    candidate = {"lr": 1e-2, "batch_size": 8, "steps": 12}
    hp = {"seed": 0, "warmup_steps": 1, "weight_decay": 0.0, "max_grad_norm": 1.0,
          "pool_size": 64}  # fmt: skip
    tuned, history, metrics = finetune.run(model, bpe, movie, "positive", candidate, hp)
    assert len(history) == 12 and history.loss.iloc[-3:].mean() < history.loss.iloc[:3].mean()
    assert metrics["nll_pos_val"] < before - 0.5
    assert metrics["val_ppl"] == pytest.approx(math.exp(metrics["nll_pos_val"]))
    assert sentence_nll(tuned, bpe, val) == pytest.approx(metrics["nll_pos_val"])


# generation ----------------------------------------------------------------------------------


def draw(models, combine, vocab, **overrides):
    settings = {"samples_per_prompt": 3, "max_new_tokens": 8, "top_p": 0.9, "seed": 1,
                "batch_size": 5}  # fmt: skip
    return sampler.sample(models, combine, PROMPTS, vocab, **(settings | overrides))


@TIES
def test_greedy_llama_decode_equals_hf_generate_and_stops_at_eos(bpe, tied):
    """Rotary positions from the attention mask, a static KV cache, EOS ending rows early."""
    model = sharp(tiny_llama.model(bpe, tied=tied, seed=0))
    eos = bpe.eos_token_id
    with torch.no_grad():
        model.lm_head.weight[eos] *= 2.5  # a larger EOS logit ends some rows early
    ids, mask = sampler.left_pad(sampler.encode_prompts(PROMPTS, bpe), eos)
    options = {"max_new_tokens": 12, "top_p": None, "uniforms": None, "greedy": True}
    ours = sampler.decode([model], combiners.plain, ids, mask, eos_id=eos, **options)
    theirs = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                            pad_token_id=eos)[:, ids.shape[1] :]  # fmt: skip
    assert torch.equal(ours, theirs)
    ended = (ours == eos).any(1)
    assert ended.any() and not ended.all()  # rows that end and rows that run to the limit
    assert len(set(map(tuple, ours.tolist()))) > 1  # the prompts' positions matter


def test_nucleus_samples_of_a_llama_have_the_right_shape(base_dirs):
    model, vocab = checkpoints.load(base_dirs["theta0"]), tok.load(base_dirs["theta0"])
    rows = draw([model], combiners.plain, vocab)
    assert [(r["prompt_index"], r["sample_id"]) for r in rows] == [
        (i, j) for i in range(len(PROMPTS)) for j in range(3)
    ]
    assert all(len(r["token_ids"]) == r["n_new_tokens"] - r["ended"] <= 8 for r in rows)
    assert rows == draw([model], combiners.plain, vocab, batch_size=12)  # batching changes none


def test_dexperts_of_llama_bases_stops_at_eos_and_reduces_to_its_base(base_dirs):
    bases = [checkpoints.load(base_dirs[n]) for n in ("theta0", "theta_pos", "theta_neg")]
    vocab, eos = tok.load(base_dirs["theta0"]), tok.load(base_dirs["theta0"]).eos_token_id
    dexperts = combiners.dexperts(2.0, filter_p=0.9)
    calls = []

    def ending_at_step_3(logits):
        z = dexperts(logits)
        calls.append(1)
        return z.index_fill(-1, torch.tensor([eos]), 1e9) if len(calls) == 3 else z

    rows = draw(bases, ending_at_step_3, vocab, samples_per_prompt=2, batch_size=8, top_p=1.0)
    assert len(rows) == 8 and len(calls) == 4  # the loop checks for the end every 4 steps
    assert all(r["ended"] and r["n_new_tokens"] == 3 and len(r["token_ids"]) == 2 for r in rows)
    base = draw(bases[:1], combiners.plain, vocab, top_p=0.9)  # DExperts at α = 0
    assert draw(bases, dexperts, vocab, top_p=1.0) != base  # the experts shift it at α = 2
    # θ+ as its own anti-expert: z+ − z− = 0, one KV cache serves both of its places
    assert draw([bases[0], bases[1], bases[1]], dexperts, vocab, top_p=1.0) == base


# perplexity and point metrics ----------------------------------------------------------------


def test_llama_perplexity_is_finite_and_does_not_depend_on_batch_size(bpe):
    model = tiny_llama.model(bpe, tied=True, seed=3)
    continuations = [" was wonderful today.", " slow", " seemed dreadful", " felt charming."]
    one = perplexity.conditional_perplexity(model, bpe, PROMPTS, continuations, batch_size=1)
    four = perplexity.conditional_perplexity(model, bpe, PROMPTS, continuations, batch_size=4)
    assert all(1 < p < 10 * len(bpe) for p in one)  # random weights: near the vocabulary size
    torch.testing.assert_close(torch.tensor(one), torch.tensor(four), rtol=1e-5, atol=0)


def test_point_metrics_of_a_rebuilt_llama_point_are_finite(base_dirs):
    bases = {name: checkpoints.load(d) for name, d in base_dirs.items()}
    interpolator = merge.Interpolator(bases)
    model = chunk.rebuild(interpolator, "g2", {"alpha": 0.5, "label": "0.5"})
    data = chunk.Data(prompts=pd.DataFrame(), positive_test=tiny_llama.TEXTS[:6],
                      negative_test=tiny_llama.TEXTS[6:12], words={"positive": ["wonderful"],
                      "negative": ["boring"]})  # fmt: skip
    row = chunk.point_metrics(model, tok.load(base_dirs["theta0"]), data, batch_size=4)
    assert all(math.isfinite(v) for v in row.values())
    assert 0 < row["p_wonderful"] + row["p_boring"] <= 1
