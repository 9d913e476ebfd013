"""Config validation: the closed schema plus the rules that span several keys."""

import copy
import math
from pathlib import Path

import pytest
import yaml

from lmlerp.config import ConfigError, load, validate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
LMC_STEPS = DEFAULT["connectivity"]["finetune"]["steps"]


def _set(path: str, value):
    def edit(config):
        *parents, last = path.split(".")
        for key in parents:
            config = config[key]
        config[last] = value

    return edit


def _delete(path: str):
    def edit(config):
        *parents, last = path.split(".")
        for key in parents:
            config = config[key]
        del config[last]

    return edit


# (id, edit of the default config, regex the ConfigError message must match)
MALFORMED = [
    ("seed-wrong-type", _set("seed", "zero"), r"'seed'.*not of type 'integer'"),
    ("unknown-top-level-key", _set("sed", 1), r"'sed' is not a known setting"),
    ("unknown-nested-key", _set("finetune.lrr", [1.0e-3]), r"'finetune\.lrr' is not a known"),
    ("negative-lr-in-grid", _set("finetune.lr", [3.0e-4, -0.1]), r"'finetune\.lr\[1\]'"),
    ("zero-steps", _set("pretrain.steps", 0), r"'pretrain\.steps'.*less than the minimum"),
    ("empty-lr-grid", _set("finetune.lr", []), r"'finetune\.lr'.*non-empty"),
    ("duplicate-grid-values", _set("finetune.lr", [1.0e-3, 1.0e-3]), r"'finetune\.lr'.*non-uniq"),
    ("bad-device", _set("device", "tpu"), r"'device'.*'tpu'"),
    ("bad-dtype", _set("dtype", "float16"), r"'dtype'.*'float16'"),
    ("missing-required-key", _delete("pretrain.lr"), r"'pretrain\.lr' is required but missing"),
    (
        "missing-nested-seed",
        _delete("pretrain.seeds.theta_c4"),
        r"'pretrain\.seeds\.theta_c4' is required",
    ),
    (
        "movie-splits-not-summing-to-1",
        _set("data.movie_splits.train", 0.6),
        r"'data\.movie_splits'.*sum to 1",
    ),
    (
        "corpus-splits-not-summing-to-1",
        _set("data.corpus_splits.heldout", 0.0),
        r"'data\.corpus_splits'.*sum to 1",
    ),
    ("min-tokens-above-max", _set("prompts.min_tokens", 11), r"'prompts\.min_tokens'"),
    ("n-head-not-dividing-n-embd", _set("model.n_head", 3), r"'model\.n_head'.*does not divide"),
    (
        "block-size-above-n-positions",
        _set("pretrain.block_size", 256),
        r"'pretrain\.block_size'.*n_positions",
    ),
    ("warmup-equal-to-steps", _set("pretrain.warmup_steps", 200), r"'pretrain\.warmup_steps'"),
    ("finetune-warmup-too-long", _set("finetune.warmup_steps", 120), r"'finetune\.warmup_steps'"),
    (
        "equal-pretrain-seeds",
        _set("pretrain.seeds.theta_c4", 1),
        r"'pretrain\.seeds\.theta_c4' must differ",
    ),
    ("sha256-too-short", _set("assets.vader.sha256", "abc123"), r"'assets\.vader\.sha256'"),
    ("sha256-upper-case", _set("assets.vader.sha256", "A" * 64), r"'assets\.vader\.sha256'"),
    (
        "member-name-with-slash",
        _set("assets.gensim.members", {"sub/lee.cor": "gensim/test/test_data/lee.cor"}),
        r"'assets\.gensim\.members'.*sub/lee\.cor",
    ),
    (
        "lr-written-as-string",
        _set("pretrain.lr", "1e-4"),
        r"'pretrain\.lr'.*write it with a dot, e\.g\. 1\.0e-4",
    ),
    ("bad-betas-length", _set("pretrain.betas", [0.9]), r"'pretrain\.betas'"),
    ("zero-grad-clip", _set("finetune.max_grad_norm", 0.0), r"'finetune\.max_grad_norm'"),
    ("grad-clip-as-text", _set("pretrain.max_grad_norm", "off"), r"'pretrain\.max_grad_norm'"),
    ("zero-pool", _set("finetune.pool_size", 0), r"'finetune\.pool_size'"),
    ("nan-in-g3-grid", _set("paths.g3.beta", [0.0, math.nan]), r"'paths\.g3\.beta\[1\]'.*finite"),
    ("inf-top-p", _set("generation.top_p", math.inf), r"'generation\.top_p'.*finite"),
    ("nan-judge-c", _set("judge.C", -math.nan), r"'judge\.C'.*finite"),
    ("unknown-judge-domain", _set("judge.domains", ["movie", "imdb"]), r"'judge\.domains\[1\]'"),
    (
        "curve-model-not-a-model",
        _set("connectivity.curves.model", "pt999"),
        r"'connectivity\.curves\.model'.*pt999.*not one of",
    ),
    (
        "classifier-warmup-too-long",
        _set("connectivity.finetune.warmup_steps", LMC_STEPS),
        r"'connectivity\.finetune\.warmup_steps'",
    ),
    (
        "checkpoint-every-above-steps",
        _set("connectivity.finetune.checkpoint_every", LMC_STEPS + 1),
        r"'connectivity\.finetune\.checkpoint_every'",
    ),
    (
        "unknown-curve-pair",
        _set("connectivity.curves.pairs", ["seeds_full", "theta0_c4"]),
        r"'connectivity\.curves\.pairs\[1\]'.*theta0_c4",
    ),
    ("no-curve-pair", _set("connectivity.curves.pairs", []), r"'connectivity\.curves\.pairs'"),
    ("glue-without-path", _set("connectivity.task", "glue_qqp"), r"'connectivity\.glue\.path'"),
    ("one-seed-only", _set("connectivity.seeds", [42]), r"'connectivity\.seeds'"),
    ("one-point-path", _set("connectivity.path_points", 1), r"'connectivity\.path_points'"),
    (
        "model-with-two-sources",
        _set("connectivity.models.pt40", {"pretrain_steps": 40, "source": {"path": "/m"}}),
        r"'connectivity\.models\.pt40'",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_config_names_the_key(edit, message):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_grad_clipping_may_be_off_anywhere():
    config = copy.deepcopy(DEFAULT)
    for section in (config["pretrain"], config["finetune"], config["connectivity"]["finetune"]):
        section["max_grad_norm"] = None
    validate(config)


def test_non_finite_numbers_in_yaml_are_refused(tmp_path):
    text = (
        (ROOT / "config.yaml")
        .read_text()
        .replace("    alpha: [-1.0, -0.5,", "    alpha: [.nan, -0.5,")
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"config key 'paths\.g1\.alpha\[0\]' is not a finite"):
        load(path)


@pytest.mark.parametrize("path", ["config.yaml", "tests/configs/tiny.yaml"])
def test_shipped_configs_are_valid(path):
    config = load(ROOT / path)
    assert config["seed"] == 0
    assert set(config) == set(DEFAULT)


def test_the_merge_families_config_extends_the_default():
    """configs/merges.yaml goes after config.yaml (`--configfile config.yaml configs/merges.yaml`):
    Snakemake merges it in, so the merged config must validate and keep the default's families."""
    config = copy.deepcopy(DEFAULT)
    merges = yaml.safe_load((ROOT / "configs/merges.yaml").read_text())
    assert set(merges) == {"paths"}
    config["paths"].update(merges["paths"])
    validate(config)
    assert {"g1", "g2", "g3", "merges"} <= set(config["paths"])
    methods = {family["method"] for family in config["paths"]["merges"].values()}
    assert methods == {"task_arithmetic", "ties", "dare", "slerp"}


def test_load_writes_nothing_and_returns_the_file_content(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(DEFAULT))
    assert load(path) == DEFAULT


def test_load_refuses_a_yaml_list(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- seed: 0\n- device: cpu\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(path)


def test_load_validates_the_file(tmp_path):
    config = copy.deepcopy(DEFAULT)
    config["finetune"]["lrr"] = [1.0e-3]
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"'finetune\.lrr'"):
        load(path)


def test_unknown_key_message_lists_the_allowed_keys():
    config = copy.deepcopy(DEFAULT)
    config["finetune"]["lrr"] = [1.0e-3]
    with pytest.raises(
        ConfigError,
        match=r"allowed here: batch_size, checkpoint_every, lr, max_grad_norm, micro_batch_size, "
        r"pool_size, seed, ",
    ):
        validate(config)


def test_exponent_without_dot_in_yaml_is_caught_with_a_hint(tmp_path):
    text = (ROOT / "config.yaml").read_text().replace("lr: 2.0e-3", "lr: 2e-3")
    assert "lr: 2e-3" in text
    path = tmp_path / "exponent.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"'pretrain\.lr'.*YAML reads 2e-3 as text"):
        load(path)


def test_a_valid_config_is_remembered_and_a_changed_one_validated_again(tmp_path, monkeypatch):
    import lmlerp.config.validation as validation

    config = load(Path(__file__).parent / "configs" / "tiny.yaml")
    cache = tmp_path / "valid"
    validate(config, cache=cache)
    assert [p.name for p in cache.iterdir()] == [validation.fingerprint(config)]
    calls = []
    monkeypatch.setattr(validation, "check", lambda c: calls.append(c))
    validate(config, cache=cache)  # remembered: neither the schema nor the checks run
    assert calls == []
    changed = {**config, "seed": config["seed"] + 1}
    validate(changed, cache=cache)
    assert len(calls) == 1 and len(list(cache.iterdir())) == 2


def test_a_bad_config_is_never_remembered(tmp_path):
    config = load(Path(__file__).parent / "configs" / "tiny.yaml")
    bad = {**config, "seed": -1}
    for _ in range(2):
        with pytest.raises(ConfigError, match="config key 'seed'"):
            validate(bad, cache=tmp_path / "valid")
    assert not (tmp_path / "valid").exists()
