"""The optional parts of a config: paths.decorrelated, connectivity, and the from-scratch sections
(tokenizer, model, pretrain) that only a config pretraining an LM here needs."""

import copy
from pathlib import Path

import pytest
import yaml

from lmlerp.config import ConfigError, parts, validate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
HUB_THETA0 = {"models": {"theta0": {"path": "/models/smollm2-135m"}}}
HEAVY = ("pretrain", "finetune_reference", "pretrain_budget", "finetune_classifier", "connect")


def pretrained_lm() -> dict:
    """The default with θ0 from the hub and neither optional part: nothing is pretrained here."""
    config = copy.deepcopy(DEFAULT)
    del config["paths"]["decorrelated"], config["connectivity"]
    for key in ("tokenizer", "model", "pretrain"):
        del config[key]
    for rule in (*HEAVY, "bezier"):
        del config["resources"][rule]
    return config | {"hub": copy.deepcopy(HUB_THETA0)}


def test_a_pretrained_lm_config_needs_no_from_scratch_section():
    config = pretrained_lm()
    validate(config)
    assert parts.pretrained_here(config) == []
    assert parts.needed_keys(config) == {}


def test_the_default_pretrains_theta0_then_theta_c4():
    assert parts.pretrained_here(DEFAULT) == ["theta0", "theta_c4"]
    without = copy.deepcopy(DEFAULT)
    del without["paths"]["decorrelated"]
    assert parts.pretrained_here(without) == ["theta0"]


@pytest.mark.parametrize("key", ["model", "pretrain", "tokenizer"])
def test_a_pretrained_theta0_needs_each_from_scratch_section(key):
    config = copy.deepcopy(DEFAULT)
    del config[key]
    with pytest.raises(
        ConfigError,
        match=rf"^config key '{key}' is required but missing: θ0 is pretrained from scratch here "
        r"\(hub\.models\.theta0 is not set\)$",
    ):
        validate(config)


def test_theta_c4_alone_needs_model_but_no_tokenizer():
    """A hub θ0 with the decorrelated pair: θC4 is pretrained (on θ0's tokenizer)."""
    config = pretrained_lm()
    config["paths"]["decorrelated"] = DEFAULT["paths"]["decorrelated"]
    config["resources"]["pretrain"] = DEFAULT["resources"]["pretrain"]
    config["hub"] = {"models": {"theta0": {"path": "/m"}}}
    with pytest.raises(ConfigError, match=r"'model' is required but missing: paths\.decorrelated"):
        validate(config)
    config["model"], config["pretrain"] = DEFAULT["model"], copy.deepcopy(DEFAULT["pretrain"])
    del config["pretrain"]["seeds"]["theta0"]
    validate(config)  # no tokenizer, no θ0 seed: θ0 is not pretrained here


def test_the_theta_c4_seed_is_needed_only_with_the_decorrelated_pair():
    config = copy.deepcopy(DEFAULT)
    del config["pretrain"]["seeds"]["theta_c4"]
    with pytest.raises(ConfigError, match=r"'pretrain\.seeds\.theta_c4' is required but missing"):
        validate(config)
    del config["paths"]["decorrelated"]
    validate(config)


def test_connectivity_needs_its_jobs_resources():
    config = copy.deepcopy(DEFAULT)
    del config["resources"]["bezier"]
    with pytest.raises(ConfigError, match=r"'resources\.bezier' is required but missing: the conn"):
        validate(config)
    del config["connectivity"]
    validate(config)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["hub"]["models"].update(reference={"path": "/distilgpt2"}),
            r"'hub\.models\.reference': the reference is the first base of paths\.decorrelated",
        ),
        (
            lambda c: c["paths"].update(
                merges={"c4": {"method": "slerp", "between": ["theta0", "theta_c4"], "t": [0.5]}}
            ),
            r"'paths\.merges\.c4': base theta_c4 is θC4, which is pretrained only for paths\.deco",
        ),
    ],
    ids=["reference", "merge-base"],
)
def test_what_only_an_absent_part_would_use_is_refused(edit, message):
    config = pretrained_lm()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_a_hub_theta0_has_no_recipe_for_a_connectivity_budget():
    """Without `pretrain` every pretrain_steps entry is a budget of a recipe that is not there."""
    config = pretrained_lm()
    config["connectivity"] = copy.deepcopy(DEFAULT["connectivity"])
    config["connectivity"]["models"] = {"small": {"pretrain_steps": 10}}
    config["connectivity"]["curves"]["model"] = "small"
    config["resources"] |= {rule: DEFAULT["resources"][rule] for rule in (*HEAVY, "bezier")}
    assert parts.budgets(config) == ["small"]
    with pytest.raises(
        ConfigError,
        match=r"'connectivity\.models\.small\.pretrain_steps': θ0 comes from hub\.models\.theta0",
    ):
        validate(config)
