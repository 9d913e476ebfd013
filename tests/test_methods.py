"""Merge methods (TIES, DARE, SLERP, task arithmetic): their defining invariants, their families
from config, recipes that carry a method, and the errors that name the culprit key."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import yaml

from lmlerp import config as lmlerp_config
from lmlerp.space import families, merge, mergekit_yaml, methods, paths
from lmlerp.space.recipes import Recipe, materialize

TINY = yaml.safe_load((Path(__file__).parent / "configs" / "tiny.yaml").read_text())
ENTRIES = {
    "ta": {"method": "task_arithmetic", "base": "theta0", "models": {"theta_pos": 1.0},
           "lambda": [0.5, 1.0]},
    "ties": {"method": "ties", "base": "theta0", "models": {"theta_pos": 1.0, "theta_neg": -1.0},
             "density": [0.2, 1.0], "lambda": [1.0], "trim": "tensor"},
    "dare": {"method": "dare", "base": "theta0", "models": {"theta_pos": 1.0}, "drop_rate": [0.5],
             "lambda": [1.0], "combination": "linear", "seed": 0},
    "slerp": {"method": "slerp", "between": ["theta_neg", "theta_pos"], "t": [0.0, 0.5, 1.0]},
}  # fmt: skip


@pytest.fixture(scope="module")
def states():
    """θ0 and θ± = θ0 + noise: a weight matrix, a bias, a tied embedding pair, an int buffer."""
    generator = torch.Generator().manual_seed(0)
    theta0 = {
        "w": torch.randn(40, 30, generator=generator),
        "b": torch.randn(30, generator=generator),
    }
    out = {}
    for i, name in enumerate(("theta0", "theta_pos", "theta_neg")):
        state = {
            k: v + (0.1 * i) * torch.randn(v.shape, generator=generator) for k, v in theta0.items()
        }
        state["wte"] = state["w"][:20]  # aliases: merged once, stays tied
        state["lm_head"] = state["wte"]
        state["steps"] = torch.tensor([3])
        out[name] = state
    return out  # fmt: skip


def point(name: str, **coords) -> dict:
    spec = families.resolve(name, ENTRIES[name])
    grid = {p["label"]: p for p in families.family_points(spec)}
    return families.point_merge(spec, grid[families.label(coords)])


def test_disjoint_merge_follows_the_papers_equations_by_hand():
    """τ1 = (1, −2, 0.5, 0), τ2 = (3, 1, −0.5, 0): γ = (+, −, 0, 0); agreeing mean (2, −2, 0, 0)."""
    taus = torch.tensor([[1.0, -2.0, 0.5, 0.0], [3.0, 1.0, -0.5, 0.0]])
    torch.testing.assert_close(methods.disjoint_merge(taus, torch.ones(2)),
                               torch.tensor([2.0, -2.0, 0.0, 0.0]))  # fmt: skip
    torch.testing.assert_close(methods.disjoint_merge(taus, torch.ones(2), normalize=False),
                               torch.tensor([4.0, -2.0, 0.0, 0.0]))  # fmt: skip


def test_trim_keeps_exactly_the_top_k_magnitudes():
    tau = torch.tensor([0.1, -0.9, 0.3, -0.2, 0.8, 0.05, 0.4, -0.6, 0.7, 0.01])
    torch.testing.assert_close(methods.trim(tau, 0.3), tau * (tau.abs() >= 0.7))
    assert int((methods.trim(tau, 0.01) != 0).sum()) == 1  # at least one entry survives
    torch.testing.assert_close(methods.trim(tau, 1.0), tau)


def test_model_wide_trim_keeps_the_top_k_of_the_whole_task_vector():
    big, small = torch.tensor([5.0, 4.0, 3.0]), torch.tensor([0.1, 0.2, 0.3])
    threshold = methods.model_threshold([big, small], 0.5)  # k = 3 of 6: the big tensor
    assert threshold == 3.0
    assert torch.equal(methods.trim(small, 0.5, threshold), torch.zeros(3))


def test_ties_at_density_1_with_one_model_is_task_arithmetic(states):
    ties = {"method": "ties", "params": {"base": "theta0", "weights": {"theta_pos": 1.0},
            "lambda": 1.7, "densities": {"theta_pos": 1.0}, "scope": "tensor",
            "normalize": True, "rescale": None}}  # fmt: skip
    ta = {"method": "task_arithmetic", "params": {"base": "theta0",
          "weights": {"theta_pos": 1.0}, "lambda": 1.7, "normalize": False}}  # fmt: skip
    for key, value in methods.merge(ties, states).items():
        torch.testing.assert_close(value, methods.merge(ta, states)[key], msg=key)


def test_task_arithmetic_along_the_sentiment_direction_is_g2_exactly():
    spec = families.resolve(
        "x",
        {
            "method": "task_arithmetic",
            "base": "theta0",
            "models": {"theta_pos": 1.0, "theta_neg": -1.0},
            "lambda": [0.7],
        },
    )
    (grid_point,) = families.family_points(spec)
    coefficients = families.coefficients(families.point_merge(spec, grid_point))
    assert coefficients == paths.g2(0.7)  # the same numbers: the same point-cache entry


def test_merges_copy_buffers_and_keep_tied_tensors_tied(states):
    for name, coords in (
        ("ties", {"density": 0.2, "lambda": 1.0}),
        ("dare", {"drop_rate": 0.5, "lambda": 1.0}),
        ("slerp", {"t": 0.5}),
    ):
        out = methods.merge(point(name, **coords), states)
        assert out["lm_head"] is out["wte"] and torch.equal(out["steps"], torch.tensor([3]))
        assert out["w"].dtype == torch.float32


def test_dare_drops_with_rate_p_and_rescales_survivors_by_1_over_1_minus_p():
    tau = torch.randn(200_000, generator=torch.Generator().manual_seed(1))
    dropped = methods.drop(tau, 0.9, seed=123)
    kept = dropped != 0
    assert abs(kept.float().mean().item() - 0.1) < 0.005
    torch.testing.assert_close(dropped[kept], tau[kept] / 0.1)
    assert abs(dropped.mean().item() - tau.mean().item()) < 0.02  # E[τ̃] = τ
    assert torch.equal(methods.drop(tau, 0.9, seed=123), dropped)  # seeded: reproducible
    assert not torch.equal(methods.drop(tau, 0.9, seed=124), dropped)
    assert torch.equal(methods.drop(tau, 0.0, seed=1), tau)


def test_dare_seeds_differ_per_base_and_tensor():
    seeds = {methods.tensor_seed(0, b, t) for b in ("theta_pos", "theta_neg") for t in ("w", "b")}
    assert len(seeds) == 4 and methods.tensor_seed(0, "x", "w") == methods.tensor_seed(0, "x", "w")


def test_slerp_endpoints_sphere_and_parallel_fallback():
    v0, v1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(methods.slerp(0.0, v0, v1), v0)
    torch.testing.assert_close(methods.slerp(1.0, v0, v1), v1)
    half = methods.slerp(0.5, v0, v1)  # on the arc, not the chord (norm 1, not 0.707)
    torch.testing.assert_close(half, torch.tensor([math.sqrt(0.5)] * 2))
    parallel = torch.tensor([2.0, 0.0])  # cos Ω = 1 > 0.9995: the straight line
    torch.testing.assert_close(methods.slerp(0.25, v0, parallel), torch.tensor([1.25, 0.0]))
    nearly = torch.tensor([1.0, 0.02])  # Ω ≈ 1.15° < 1.8°: still the line
    torch.testing.assert_close(methods.slerp(0.5, v0, nearly), (v0 + nearly) / 2)


def test_interpolator_rebuilds_a_method_point_like_materialize(tmp_path):
    """The evaluation's in-place rebuild (views of Θ) equals `methods.merge` on state dicts."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=16, vocab_size=32)
    torch.manual_seed(0)
    models = {n: GPT2LMHeadModel(config) for n in ("theta0", "theta_pos", "theta_neg")}
    interpolator = merge.Interpolator(models)
    for name, coords in (("ties", {"density": 0.2, "lambda": 1.0}),
                         ("dare", {"drop_rate": 0.5, "lambda": 1.0})):  # fmt: skip
        definition = point(name, **coords)
        expected = methods.merge(definition, {n: m.state_dict() for n, m in models.items()})
        rebuilt = interpolator.load(methods.merge(definition, interpolator.base_states()))
        for key, value in rebuilt.state_dict().items():
            torch.testing.assert_close(value, expected[key], msg=key)


def test_a_merge_recipe_round_trips_and_refuses_tampering(tmp_path):
    definition = point("ties", density=0.2, **{"lambda": 1.0})
    bases = {n: {"path": n, "sha256": "0" * 64} for n in families.bases_of(definition)}
    recipe = Recipe("ties", {"density": 0.2, "lambda": 1.0}, "d0.2_l1", None, bases,
                    definition["method"], definition["params"])  # fmt: skip
    recipe.write(tmp_path / "recipe.json")
    assert Recipe.read(tmp_path / "recipe.json") == recipe
    with pytest.raises(ValueError, match=r"label should be 'd0\.2_l1'"):
        Recipe("ties", recipe.coords, "wrong", None, bases, recipe.method, recipe.params)
    with pytest.raises(ValueError, match="coefficients"):
        Recipe("ties", recipe.coords, "d0.2_l1", {"theta0": 1.0}, bases, recipe.method,
               recipe.params)  # fmt: skip


def test_materialize_rebuilds_a_merge_recipe_from_its_bases(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=16, vocab_size=32)
    torch.manual_seed(1)
    models = {n: GPT2LMHeadModel(config) for n in ("theta_neg", "theta_pos")}
    definition = point("slerp", t=0.5)
    bases = {n: {"path": n, "sha256": "0" * 64} for n in families.bases_of(definition)}
    recipe = Recipe("slerp", {"t": 0.5}, "t0.5", None, bases, "slerp", definition["params"])
    _, model = materialize(recipe, bases=models)
    for key, value in model.state_dict().items():
        expected = methods.slerp(0.5, models["theta_neg"].state_dict()[key],
                                 models["theta_pos"].state_dict()[key])  # fmt: skip
        torch.testing.assert_close(value, expected, msg=key)


# --- config: refused before any job, naming the key ---------------------------------------------


def validate_merges(merges: dict) -> None:
    config = copy.deepcopy(TINY)
    config["paths"]["merges"] = merges
    lmlerp_config.validate(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ties": {"density": [1.5]}}, r"'paths\.merges\.ties\.density\[0\]': 1\.5 is greater"),
        ({"ties": {"density": [0.0]}}, r"'paths\.merges\.ties\.density\[0\]': 0\.0 is less"),
        ({"dare": {"drop_rate": [1.0]}}, r"'paths\.merges\.dare\.drop_rate\[0\]': 1\.0 is greater"),
        ({"dare": {"drop_rate": [-0.1]}}, r"'paths\.merges\.dare\.drop_rate\[0\]': -0\.1 is less"),
        ({"ta": {"method": "fancy"}}, r"'paths\.merges\.ta\.method': 'fancy' is not one of"),
        ({"slerp": {"lambda": [1.0]}}, r"'paths\.merges\.slerp\.lambda' means nothing for method"),
        ({"ta": {"models": {"theta0": 1.0}}}, r"'paths\.merges\.ta\.models': one or more task"),
        ({"slerp": {"between": ["theta_pos", "theta_pos"]}}, r"'paths\.merges\.slerp\.between'"),
    ],
)  # fmt: skip
def test_bad_merge_parameters_are_refused_naming_the_key(change, message):
    merges = copy.deepcopy(ENTRIES)
    for name, values in change.items():
        merges[name].update(values)
    with pytest.raises(lmlerp_config.ConfigError, match=message):
        validate_merges(merges)


def test_a_missing_key_and_a_builtin_name_are_refused():
    entry = {k: v for k, v in ENTRIES["ties"].items() if k != "trim"}
    with pytest.raises(lmlerp_config.ConfigError, match=r"'paths\.merges\.ties\.trim' is required"):
        validate_merges({"ties": entry})
    with pytest.raises(
        lmlerp_config.ConfigError, match=r"'paths\.merges\.g2': the name of a built"
    ):
        validate_merges({"g2": ENTRIES["ta"]})
    validate_merges(ENTRIES)  # the good ones pass


MERGEKIT = {"merge_method": "ties", "base_model": "b0",
            "models": [{"model": "bp", "parameters": {"weight": 1.0, "density": 0.5}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slices": []}, r"at slices: slices \(layer-range merges\) is not supported"),
        ({"tokenizer_source": "base"}, r"at tokenizer_source: .* not supported"),
        ({"merge_method": "model_stock"}, r"merge_method: 'model_stock' is not supported"),
        ({"parameters": {"lambda": [0.5, 1.0]}}, r"parameters\.lambda: per-layer gradients"),
        ({"parameters": {"gamma": 0.1}}, r"parameters\.gamma: unknown parameter of ties"),
        ({"models": [{"model": "bp", "parameters": {"weight": 1.0, "density": 1.5}}]},
         r"density 1\.5 of 'theta_pos' is outside \(0, 1\]"),
        ({"models": [{"model": "elsewhere", "parameters": {"weight": 1.0}}]},
         r"models\[0\]\.model: model 'elsewhere' is no lmlerp base"),
        ({"models": [{"model": "bp+lora", "parameters": {"weight": 1.0}}]}, r"LoRA model strings"),
        ({"merge_method": "dare_ties"}, r"draws random drop masks; set the family's `seed`"),
    ],
)  # fmt: skip
def test_unsupported_mergekit_features_are_refused_naming_them(tmp_path, change, message):
    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump({**MERGEKIT, **change}))
    entry = {"method": "mergekit", "yaml": str(path), "bases": {"b0": "theta0", "bp": "theta_pos"}}
    with pytest.raises(lmlerp_config.ConfigError, match=r"config key 'paths\.merges\.mk\.yaml'"):
        validate_merges({"mk": entry})
    with pytest.raises(families.FamilyError, match=message):
        families.resolve("mk", entry, mergekit_yaml.read)


def test_a_mergekit_sweep_sets_the_parameter_wherever_the_yaml_sets_it(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump(MERGEKIT))
    entry = {"method": "mergekit", "yaml": str(path), "bases": {"b0": "theta0", "bp": "theta_pos"},
             "sweep": {"parameter": "density", "values": [0.3, 0.6]}}  # fmt: skip
    spec = families.resolve("mk", entry, mergekit_yaml.read)
    grid = families.family_points(spec)
    assert [p["label"] for p in grid] == ["d0.3", "d0.6"]
    merges = [families.point_merge(spec, p)["params"]["densities"] for p in grid]
    assert merges == [{"theta_pos": 0.3}, {"theta_pos": 0.6}]
    lone = families.resolve("one", {k: v for k, v in entry.items() if k != "sweep"},
                            mergekit_yaml.read)  # fmt: skip
    assert families.family_points(lone) == [{"label": "merge"}]
