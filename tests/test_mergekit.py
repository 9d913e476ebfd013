"""lmlerp's merges against mergekit 0.1.5 (a test-only dependency, requirements-test.lock).

The same mergekit YAML is merged by mergekit's Python API (`run_merge`, CPU, local
save_pretrained directories, no hub) and translated by `mergekit_yaml` into an lmlerp merge
rebuilt by `methods.merge`; every tensor mergekit writes must agree to float32 rounding. DARE's
drop masks come from different random streams (mergekit: torch's global RNG; lmlerp: a seeded
generator per tensor), so for DARE the test compares what is deterministic: no drop (density 1)
exactly, and with drops the kept fraction and the L1 norm that mergekit's rescale preserves.
"""

from __future__ import annotations

import pytest
import torch
from mergekit.config import MergeConfiguration
from mergekit.merge import run_merge
from mergekit.options import MergeOptions
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel

from lmlerp.space import mergekit_yaml, methods

NAMES = ("theta0", "theta_pos", "theta_neg")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """θ0 random, θ± = θ0 + small noise (fine-tuned-like task vectors), as HF directories."""
    root = tmp_path_factory.mktemp("mergekit-bases")
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=32, vocab_size=64)
    torch.manual_seed(0)
    theta0 = GPT2LMHeadModel(config)
    out = {}
    for i, name in enumerate(NAMES):
        model = GPT2LMHeadModel(config)
        generator = torch.Generator().manual_seed(i)
        state = {
            k: v + (0.02 * i) * torch.randn(v.shape, generator=generator)
            for k, v in theta0.state_dict().items()
        }
        model.load_state_dict(state)
        model.save_pretrained(root / name)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def states(dirs):
    return {name: GPT2LMHeadModel.from_pretrained(d).state_dict() for name, d in dirs.items()}


def mergekit_merge(document: dict, out) -> dict[str, torch.Tensor]:
    """What `mergekit-yaml` writes for `document` (absolute local paths: no hub lookup)."""
    options = MergeOptions(cuda=False, copy_tokenizer=False, quiet=True, random_seed=0,
                           write_model_card=False)  # fmt: skip
    run_merge(MergeConfiguration.model_validate(document), str(out), options)
    return load_file(out / "model.safetensors")


def lmlerp_merge(document: dict, dirs, states) -> dict[str, torch.Tensor]:
    entry = {"bases": {str(d): name for name, d in dirs.items()}, "seed": 0}
    return methods.merge(mergekit_yaml.translate(document, entry, "test"), states)


def document(dirs, method, models, parameters=None, base="theta0") -> dict:
    """A mergekit YAML as a dict: `models` maps base names to their parameters."""
    doc = {
        "merge_method": method,
        "models": [{"model": str(dirs[n]), "parameters": p} for n, p in models.items()],
        "dtype": "float32",
    }
    if base is not None:
        doc["base_model"] = str(dirs[base])
    if parameters:
        doc["parameters"] = parameters
    return doc


def wd(weight: float, density: float | None = None) -> dict:
    """A model's mergekit parameters."""
    return {"weight": weight} if density is None else {"weight": weight, "density": density}


POS, NEG = "theta_pos", "theta_neg"
CASES = {  # (merge_method, models, shared parameters, base_model)
    "linear": ("linear", {POS: wd(0.3), NEG: wd(0.9)}, None, None),
    "linear_unnormalised": ("linear", {POS: wd(1.5), NEG: wd(-0.5)}, {"normalize": False}, None),
    "task_arithmetic": (
        "task_arithmetic",
        {POS: wd(1.0), NEG: wd(-1.0)},
        {"lambda": 0.7},
        "theta0",
    ),
    "task_arithmetic_normalised": (
        "task_arithmetic",
        {POS: wd(1.0), NEG: wd(0.5)},
        {"normalize": True},
        "theta0",
    ),
    "ties": ("ties", {POS: wd(1.0, 0.5), NEG: wd(0.5, 0.3)}, {"lambda": 1.3}, "theta0"),
    "ties_sum": ("ties", {POS: wd(1.0, 0.2), NEG: wd(1.0, 0.7)}, {"normalize": False}, "theta0"),
    "ties_l1_rescale": (
        "ties",
        {POS: wd(1.0, 0.4), NEG: wd(2.0, 0.4)},
        {"rescale": True},
        "theta0",
    ),
    "dare_ties_without_drop": (
        "dare_ties",
        {POS: wd(1.0, 1.0), NEG: wd(0.5, 1.0)},
        {"lambda": 0.8},
        "theta0",
    ),
    "dare_linear_without_drop": ("dare_linear", {POS: wd(1.0, 1.0)}, None, "theta0"),
    "slerp": ("slerp", {NEG: {}, POS: {}}, {"t": 0.3}, NEG),
    "slerp_extrapolated": ("slerp", {NEG: {}, POS: {}}, {"t": 1.5}, NEG),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_tensor_agrees_with_mergekit_to_float32_rounding(case, dirs, states, tmp_path):
    method, models, parameters, base = CASES[case]
    doc = document(dirs, method, models, parameters, base)
    expected = mergekit_merge(doc, tmp_path / "out")
    actual = lmlerp_merge(doc, dirs, states)
    assert len(expected) == 28  # every tensor of the tiny GPT-2 but the tied lm_head
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=1.3e-6, atol=2e-6, msg=key)
    assert torch.equal(actual["lm_head.weight"], actual["transformer.wte.weight"])


def test_slerp_of_parallel_tensors_falls_back_to_the_line_as_mergekit(dirs, tmp_path):
    """θ+ = 2·θ− in every tensor: cos Ω = 1 > 0.9995, both take (1 − t)·v0 + t·v1."""
    scaled = tmp_path / "scaled"
    model = GPT2LMHeadModel.from_pretrained(dirs["theta_neg"])
    model.load_state_dict({k: 2 * v for k, v in model.state_dict().items()})
    model.save_pretrained(scaled)
    doc = {"merge_method": "slerp", "base_model": str(dirs["theta_neg"]),
           "models": [{"model": str(dirs["theta_neg"])}, {"model": str(scaled)}],
           "parameters": {"t": 0.4}, "dtype": "float32"}  # fmt: skip
    expected = mergekit_merge(doc, tmp_path / "out")
    entry = {"bases": {str(dirs["theta_neg"]): "theta_neg", str(scaled): "theta_pos"}}
    states = {"theta_neg": GPT2LMHeadModel.from_pretrained(dirs["theta_neg"]).state_dict(),
              "theta_pos": model.state_dict()}  # fmt: skip
    actual = methods.merge(mergekit_yaml.translate(doc, entry, "test"), states)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, msg=key)
        torch.testing.assert_close(actual[key], 1.4 * states["theta_neg"][key], msg=key)


def test_dare_drops_the_same_share_and_keeps_the_l1_norm_like_mergekit(dirs, states, tmp_path):
    """dare_linear, density 0.3 (p = 0.7), one model: the masks differ (random streams), but in
    both the changed entries are ≈ 30% of each large tensor, each is the task vector times one
    per-tensor factor, and mergekit's L1 rescale makes ‖θ − θ0‖₁ = λ·‖τ‖₁ exactly."""
    doc = document(dirs, "dare_linear", {POS: wd(1.0, 0.3)}, {"lambda": 1.0}, "theta0")
    ours, theirs = lmlerp_merge(doc, dirs, states), mergekit_merge(doc, tmp_path / "out")
    for key in theirs:
        base, tau = states["theta0"][key], states["theta_pos"][key] - states["theta0"][key]
        if tau.numel() < 2000:
            continue
        for merged in (ours[key], theirs[key]):
            delta = merged - base
            kept = delta != 0
            assert abs(kept.float().mean().item() - 0.3) < 0.05, key
            ratio = delta[kept] / tau[kept]
            factor = torch.full_like(ratio, ratio.median().item())  # θ − θ0 is rounded
            torch.testing.assert_close(ratio, factor, rtol=1e-3, atol=0, msg=key)
            torch.testing.assert_close(delta.abs().sum(), tau.abs().sum(), rtol=1e-4, atol=0)
        assert not torch.equal(ours[key], theirs[key])  # different random streams, as documented
