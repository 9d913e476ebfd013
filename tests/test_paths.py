"""Paths through weight space: the families' identities, `combine`'s checks, recipes."""

import copy
import itertools
import json
import shutil

import pytest
import torch

from lmlerp.data import bpe as bpe_training
from lmlerp.io import checkpoints
from lmlerp.io import tokenizer as tok
from lmlerp.space import merge, paths
from lmlerp.space import recipes as point_recipes
from lmlerp.space.merge import combine
from lmlerp.space.paths import FAMILIES, decorrelated, g1, g2, g3
from lmlerp.space.recipes import Recipe
from lmlerp.train import pretrain

SUBJECTS = ["The movie", "This film", "The actor", "A story", "The plot", "Our critic"]
ADJECTIVES = ["wonderful", "boring", "charming", "dreadful", "moving", "slow"]
TEXTS = [f"{s} was {a} today." for s, a in itertools.product(SUBJECTS, ADJECTIVES)]
ARCH = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}
NAMES = ["theta0", "theta_pos", "theta_neg", "theta_c4"]
WTE = "transformer.wte.weight"
PAPER_AXIS = [i / 2.5 for i in range(-10, 11)]


@pytest.fixture(scope="module")
def bpe():
    return bpe_training.train(TEXTS, 300, 1)


@pytest.fixture(scope="module")
def base_dirs(bpe, tmp_path_factory):
    """Four tiny random GPT-2s (different seeds) saved as safetensors directories."""
    root = tmp_path_factory.mktemp("bases")
    dirs = {}
    for seed, name in enumerate(NAMES):
        model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed)
        checkpoints.save(model, bpe, root / name)
        dirs[name] = root / name
    return dirs


@pytest.fixture(scope="module")
def states(base_dirs):
    return {name: checkpoints.load(d).state_dict() for name, d in base_dirs.items()}


@pytest.fixture
def bases(states):
    """Fresh dicts per test (tensors shared), so a test may replace entries."""
    return {name: dict(state) for name, state in states.items()}


def assert_same_state(actual, expected, **tolerance):
    assert list(actual) == list(expected)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], **tolerance, msg=name)


# --- families --------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.3, 1.0, 2.5])
def test_g3_on_the_line_alpha_plus_beta_1_is_g1(bases, alpha):
    assert_same_state(combine(bases, g3(alpha, 1 - alpha)), combine(bases, g1(alpha)))


@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.3, 1.0, 2.5])
def test_g3_on_the_line_alpha_plus_beta_0_is_g2(bases, alpha):
    assert_same_state(combine(bases, g3(alpha, -alpha)), combine(bases, g2(alpha)))


def test_endpoints_are_the_bases_exactly(bases):
    for coefficients, base in [
        (g1(0), "theta_neg"),
        (g1(1), "theta_pos"),
        (decorrelated(0), "theta0"),
    ]:
        out = combine(bases, coefficients)
        assert all(torch.equal(out[k], v) for k, v in bases[base].items()), base
    assert all(
        torch.equal(v, bases["theta_c4"][k]) for k, v in combine(bases, decorrelated(1)).items()
    )


def test_registry_declares_each_familys_coordinates():
    assert FAMILIES["g3"] == (g3, ("alpha", "beta"))
    assert {name: coords for name, (_, coords) in FAMILIES.items()} == {
        "g1": ("alpha",),
        "g2": ("alpha",),
        "g3": ("alpha", "beta"),
        "decorrelated": ("alpha",),
    }


# --- combine ---------------------------------------------------------------------------------


def test_combine_matches_a_float64_reference(bases):
    coefficients = g3(-1.6, 2.4)
    out = combine(bases, coefficients)
    for name, tensor in out.items():
        assert tensor.dtype == torch.float32
        reference = sum(c * bases[b][name].double() for b, c in coefficients.items())
        assert (tensor.double() - reference).norm() <= 1e-6 * reference.norm(), name


def test_combine_accumulates_float64_inputs_in_float64(bases):
    wide = {b: {k: v.double() for k, v in s.items()} for b, s in bases.items()}
    coefficients = {"theta0": 1 / 3, "theta_pos": 0.1, "theta_neg": -7.3}
    out = combine(wide, coefficients, out_dtype=torch.float64)
    reference = sum(c * wide[b][WTE] for b, c in coefficients.items())
    torch.testing.assert_close(out[WTE], reference, rtol=1e-14, atol=1e-14)


def test_combine_of_half_precision_bases_casts_once_to_out_dtype(bases):
    half = {b: {k: v.to(torch.bfloat16) for k, v in s.items()} for b, s in bases.items()}
    out = combine(half, g1(0.3))
    assert out[WTE].dtype == torch.float32
    reference = 0.3 * half["theta_pos"][WTE].float() + 0.7 * half["theta_neg"][WTE].float()
    torch.testing.assert_close(out[WTE], reference)
    assert combine(half, g1(0.3), out_dtype=torch.bfloat16)[WTE].dtype == torch.bfloat16


def test_combine_never_normalises_the_coefficients(bases):
    doubled = combine(bases, {"theta0": 2.0})
    torch.testing.assert_close(doubled[WTE], 2 * bases["theta0"][WTE])
    difference = combine(bases, {"theta_pos": 1.0, "theta_neg": -1.0})  # sum 0: no division
    torch.testing.assert_close(difference[WTE], bases["theta_pos"][WTE] - bases["theta_neg"][WTE])


def test_combine_keeps_tied_weights_tied(bases):
    out = combine(bases, g1(0.3))
    assert out["lm_head.weight"] is out[WTE]


def test_combine_names_the_mismatched_tensor(bases):
    bases["theta_neg"][WTE] = torch.zeros(9, 4)
    with pytest.raises(ValueError, match=r"transformer\.wte\.weight.*\(300, 32\).*\(9, 4\)"):
        combine(bases, g1(0.5))


def test_combine_names_a_missing_tensor(bases):
    del bases["theta_neg"]["transformer.h.1.mlp.c_fc.bias"]
    with pytest.raises(ValueError, match=r"theta_neg.*transformer\.h\.1\.mlp\.c_fc\.bias"):
        combine(bases, g1(0.5))


def test_combine_names_an_extra_tensor(bases):
    bases["theta_neg"]["transformer.extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"'theta_neg'.*'transformer\.extra\.weight'.*'theta0'"):
        combine(bases, g3(0.2, 0.2))


def test_combine_names_the_base_and_tensor_holding_nan(bases):
    broken = bases["theta_pos"]["transformer.h.0.ln_1.bias"].clone()
    broken[3] = float("nan")
    bases["theta_pos"]["transformer.h.0.ln_1.bias"] = broken
    with pytest.raises(ValueError, match=r"theta_pos.*transformer\.h\.0\.ln_1\.bias"):
        combine(bases, g2(0.5))


def test_combine_lists_the_available_bases(bases):
    del bases["theta_c4"]
    with pytest.raises(ValueError, match=r"theta_c4.*\['theta0', 'theta_neg', 'theta_pos'\]"):
        combine(bases, decorrelated(0.5))


def test_combine_copies_equal_integer_buffers_and_refuses_different_ones(bases):
    for b in bases:
        bases[b]["counter"] = torch.arange(4)
    out = combine(bases, g1(0.3))
    assert out["counter"].dtype == torch.int64 and torch.equal(out["counter"], torch.arange(4))
    bases["theta_neg"]["counter"] = torch.arange(4) + 1
    with pytest.raises(ValueError, match=r"counter.*theta_pos.*theta_neg"):
        combine(bases, g1(0.3))


# --- grids -----------------------------------------------------------------------------------


def test_paper_grid_has_441_clean_unique_labels():
    grid = paths.points("g3", {"alpha": PAPER_AXIS, "beta": PAPER_AXIS})
    labels = [p.label for p in grid]
    assert len(grid) == 441 == len(set(labels))
    assert not any("0000000" in label or "9999999" in label for label in labels)
    assert labels[:2] == ["a-4_b-4", "a-4_b-3.6"]  # alpha outer, beta inner: config order
    assert "a-0.4_b1.2" in labels
    point = grid[labels.index("a-0.4_b1.2")]
    assert point.coords == {"alpha": -1 / 2.5, "beta": 3 / 2.5}
    assert point.coefficients == g3(-1 / 2.5, 3 / 2.5)


def test_one_dimensional_labels():
    grid = paths.points("g1", {"alpha": [0.5, -1, 0.1 + 0.2]})
    assert [p.label for p in grid] == ["a0.5", "a-1", "a0.3"]
    assert grid[2].coords["alpha"] == 0.1 + 0.2  # the label is clean, the value is kept
    assert paths.points("decorrelated", {"alpha": [0.5]})[0].coefficients == {
        "theta_c4": 0.5,
        "theta0": 0.5,
    }


def test_duplicate_coordinates_are_refused_naming_the_family():
    with pytest.raises(ValueError, match=r"'g2'.*a0\.3"):
        paths.points("g2", {"alpha": [0.3, 0.1 + 0.2]})


def test_empty_grid_unknown_family_and_wrong_coordinates_are_refused():
    with pytest.raises(ValueError, match=r"'g3'.*empty"):
        paths.points("g3", {"alpha": [0.5], "beta": []})
    with pytest.raises(ValueError, match=r"g4.*decorrelated"):
        paths.points("g4", {"alpha": [0.5]})
    with pytest.raises(ValueError, match=r"'g3'.*alpha.*beta"):
        paths.points("g3", {"alpha": [0.5]})


# --- compatibility and recipes ---------------------------------------------------------------


def test_check_compatible_accepts_matching_bases(base_dirs):
    point_recipes.check_compatible(base_dirs)


def test_check_compatible_names_a_different_width(bpe, base_dirs, tmp_path):
    narrow = pretrain.gpt2(len(bpe), bpe.eos_token_id, {**ARCH, "n_embd": 16}, 0)
    checkpoints.save(narrow, bpe, tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"'theta0'.*'narrow'.*n_embd.*32.*16"):
        point_recipes.check_compatible(
            {"theta0": base_dirs["theta0"], "narrow": tmp_path / "narrow"}
        )


def test_check_compatible_names_a_different_tokenizer(bpe, base_dirs, tmp_path):
    other = bpe_training.train([t.upper() for t in TEXTS], 300, 1)
    model = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, 0)  # same config.json
    checkpoints.save(model, other, tmp_path / "other")
    with pytest.raises(ValueError, match=r"'theta0'.*'other'.*tokenizer"):
        point_recipes.check_compatible({"theta0": base_dirs["theta0"], "other": tmp_path / "other"})


def test_recipe_round_trip_is_exact(base_dirs, tmp_path):
    point = paths.points("g3", {"alpha": [0.1 + 0.2], "beta": [1 / 3]})[0]
    recipe = Recipe.build(point, base_dirs)
    assert list(recipe.bases) == ["theta0", "theta_pos", "theta_neg"]
    assert recipe.bases["theta0"]["sha256"] == point_recipes.weights_sha256(base_dirs["theta0"])
    recipe.write(tmp_path / "recipe.json")
    again = Recipe.read(tmp_path / "recipe.json")
    assert again == recipe
    assert again.coords["alpha"] == 0.1 + 0.2 and again.coefficients == point.coefficients
    again.verify()


def test_recipe_read_refuses_inconsistent_coefficients(base_dirs, tmp_path):
    Recipe.build(paths.points("g1", {"alpha": [0.3]})[0], base_dirs).write(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    data["coefficients"]["theta_neg"] = 0.5
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"coefficients"):
        Recipe.read(tmp_path / "r.json")


def test_recipe_build_lists_the_available_bases(base_dirs):
    point = paths.points("decorrelated", {"alpha": [0.5]})[0]
    with pytest.raises(ValueError, match=r"theta_c4.*\['theta0'"):
        Recipe.build(point, {"theta0": base_dirs["theta0"]})


def test_verify_names_the_base_whose_weights_changed(bpe, base_dirs, tmp_path):
    dirs = {name: tmp_path / name for name in ("theta_pos", "theta_neg")}
    for name, directory in dirs.items():
        shutil.copytree(base_dirs[name], directory)
    recipe = Recipe.build(paths.points("g1", {"alpha": [0.5]})[0], dirs)
    recipe.verify()
    replacement = pretrain.gpt2(len(bpe), bpe.eos_token_id, ARCH, seed=99)
    checkpoints.save(replacement, bpe, dirs["theta_neg"])
    with pytest.raises(ValueError, match=r"'theta_neg'.*changed"):
        recipe.verify()


def test_materialize_writes_a_loadable_checkpoint_equal_to_combine(base_dirs, bases, tmp_path):
    recipe = Recipe.build(paths.points("g3", {"alpha": [0.4], "beta": [-1.2]})[0], base_dirs)
    state, model = point_recipes.materialize(recipe, tmp_path / "point")
    expected = combine(bases, recipe.coefficients)
    assert_same_state(state, expected, rtol=0, atol=0)
    assert_same_state(model.state_dict(), expected, rtol=0, atol=0)
    assert any(p.suffix == ".safetensors" for p in (tmp_path / "point").iterdir())
    assert_same_state(checkpoints.load(tmp_path / "point").state_dict(), expected, rtol=0, atol=0)
    assert tok.fingerprint(tok.load(tmp_path / "point")) == tok.fingerprint(
        tok.load(base_dirs["theta0"])
    )
    preloaded = {name: checkpoints.load(d) for name, d in base_dirs.items()}
    again, _ = point_recipes.materialize(recipe, bases=preloaded)  # bases loaded once per job
    assert_same_state(again, expected, rtol=0, atol=0)


# --- in-place rebuild ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(base_dirs):
    return {name: checkpoints.load(d) for name, d in base_dirs.items()}


@pytest.mark.parametrize(
    ("family", "coords"),
    [
        ("g1", {"alpha": 2.5}),
        ("g3", {"alpha": -1.6, "beta": 2.4}),
        ("decorrelated", {"alpha": 0.3}),
    ],
)
def test_rebuild_in_place_matches_a_float64_reference(models, states, family, coords):
    interpolator = merge.Interpolator(models)
    coefficients = paths.coefficients(family, coords)
    out = interpolator.rebuild(coefficients).state_dict()
    assert list(out) == list(states["theta0"])
    for name, tensor in out.items():
        assert tensor.dtype == torch.float32
        reference = sum(c * states[b][name].double() for b, c in coefficients.items())
        assert (tensor.double() - reference).norm() <= 1e-6 * reference.norm(), name


def test_rebuild_writes_into_the_same_storage_and_keeps_weights_tied(models, states):
    interpolator = merge.Interpolator(models)
    model = interpolator.model
    assert_same_state(model.state_dict(), states["theta0"])  # the first base until a rebuild
    pointers = [p.data_ptr() for p in model.parameters()]
    for alpha in (0.3, -1.0):
        assert interpolator.rebuild(g1(alpha)) is model
        assert [p.data_ptr() for p in model.parameters()] == pointers
        assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    assert_same_state(model.state_dict(), combine(states, g1(-1.0)), rtol=1e-6, atol=1e-6)
    assert interpolator.nbytes == (len(models) + 1) * 4 * sum(p.numel() for p in model.parameters())


def test_rebuild_in_bf16_rounds_the_float32_sum_once(models, states):
    interpolator = merge.Interpolator(models, dtype=torch.bfloat16)
    coefficients = g3(0.3, 0.6)
    out = interpolator.rebuild(coefficients).state_dict()
    for name, tensor in out.items():
        assert tensor.dtype == torch.bfloat16
        reference = sum(c * states[b][name].double() for b, c in coefficients.items())
        # one rounding to bf16 (8 significant bits) of a float32 sum: within half a bf16 ulp
        torch.testing.assert_close(tensor.double(), reference, rtol=2**-8, atol=1e-6, msg=name)
    assert interpolator.nbytes == (len(models) * 4 + 2) * sum(
        p.numel() for p in interpolator.model.parameters()
    )


def test_interpolator_checks_bases_once_and_names_unknown_ones(models, states):
    interpolator = merge.Interpolator({k: models[k] for k in ("theta_pos", "theta_neg")})
    with pytest.raises(ValueError, match=r"theta0.*available bases"):
        interpolator.rebuild(g3(0.1, 0.2))
    bad = copy.deepcopy(models["theta_neg"])
    with torch.no_grad():
        bad.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"theta_neg.*c_fc"):
        merge.Interpolator({"theta_pos": models["theta_pos"], "theta_neg": bad})


def test_family_points_label_dexperts_like_g1():
    assert paths.family_points("dexperts", {"alpha": [-1.0, 0.5]}) == [
        {"label": "a-1", "alpha": -1.0},
        {"label": "a0.5", "alpha": 0.5},
    ]
    g3 = paths.family_points("g3", {"alpha": [0.0, 1.0], "beta": [2.0]})
    assert [p["label"] for p in g3] == ["a0_b2", "a1_b2"]


def test_chunks_cover_every_point_once_and_respect_the_size():
    grid = paths.family_points("g1", {"alpha": [i / 4 for i in range(-8, 9)]})  # 17 points
    chunked = paths.chunks(grid, per_job=5)
    members = [p["label"] for chunk in chunked.values() for p in chunk]
    assert sorted(members) == sorted(p["label"] for p in grid)
    assert len(chunked) <= 4  # ⌈17 / 5⌉ buckets, empty ones dropped


def test_adding_a_point_changes_only_the_chunk_that_receives_it():
    grid = paths.family_points("g1", {"alpha": [i / 4 for i in range(-8, 9)]})
    before = paths.chunks(grid, per_job=5)
    after = paths.chunks([*grid, *paths.family_points("g1", {"alpha": [7.0]})], per_job=5)
    changed = [name for name in after if after[name] != before.get(name)]
    assert len(changed) == 1
    assert any(p["label"] == "a7" for p in after[changed[0]])
