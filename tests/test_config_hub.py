"""Config rules of the paper-scale `hub` section (the paper config itself and malformed sources)."""

import copy
from pathlib import Path

import pytest
import yaml

from lmlerp.config import ConfigError, validate

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_paper_config_is_valid_and_pins_its_models():
    validate(PAPER)
    models = PAPER["hub"]["models"]
    assert models["theta0"]["repo"].endswith("gpt2-large")
    assert models["judge_lm"]["repo"].endswith("gpt2-xl")
    assert len(PAPER["paths"]["g3"]["alpha"]) == 21 == len(PAPER["paths"]["g3"]["beta"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda h: h["models"].update(theta0={"repo": "gpt2", "path": "/m", "revision": COMMIT}),
            r"'hub\.models\.theta0': give exactly one of 'repo', 'path' or 'gguf'",
        ),
        (
            lambda h: h["models"].update(theta0={"repo": "gpt2"}),
            r"'hub\.models\.theta0\.revision' is required with a repo",
        ),
        (
            lambda h: h["models"].update(reference={"path": "/m", "revision": COMMIT}),
            r"'hub\.models\.reference\.revision' means something for a repo only",
        ),
        (
            lambda h: h["datasets"]["corpus"].pop("files"),
            r"'hub\.datasets\.corpus\.files' is required for a hub dataset",
        ),
        (
            lambda h: h["models"].pop("theta0"),
            r"'hub\.datasets\.corpus': a C4 corpus only trains θC4",
        ),
        (lambda h: h.pop("prompts"), r"'hub\.prompts' is required with hub datasets"),
        (
            lambda h: h["models"].update(critic={"repo": "x/y", "revision": COMMIT}),
            r"'hub\.models\.critic' is not a known setting",
        ),
        (
            lambda h: h["models"].update(theta0={"repo": "../../etc", "revision": COMMIT}),
            r"'hub\.models\.theta0\.repo'",
        ),
        (
            lambda h: h["prompts"]["neutral"].update(sha256="abc"),
            r"'hub\.prompts\.neutral\.sha256'",
        ),
    ],
    ids=[
        "repo-and-path",
        "repo-without-revision",
        "path-with-revision",
        "dataset-without-files",
        "c4-without-hub-theta0",
        "hub-data-without-prompts",
        "unknown-model-name",
        "repo-not-an-id",
        "bad-prompt-digest",
    ],
)
def test_malformed_hub_source_names_the_key(edit, message):
    config = copy.deepcopy(PAPER)
    edit(config["hub"])
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_pretraining_budgets_need_a_theta0_recipe():
    config = copy.deepcopy(PAPER)
    config["connectivity"]["models"]["small"] = {"pretrain_steps": 10}
    with pytest.raises(ConfigError, match=r"'connectivity\.models\.small\.pretrain_steps'"):
        validate(config)


def test_connectivity_encoder_sources_follow_the_hub_rules():
    config = copy.deepcopy(PAPER)
    config["connectivity"]["models"]["roberta-base"] = {
        "source": {"repo": "FacebookAI/roberta-base"}
    }
    with pytest.raises(
        ConfigError, match=r"'connectivity\.models\.roberta-base\.source\.revision'"
    ):
        validate(config)


def _with_gguf(config):
    """The paper config with θ0 converted from the default's SmolLM2 GGUF (as configs/smollm2)."""
    config = copy.deepcopy(config)
    config["assets"]["smollm2"] = yaml.safe_load((ROOT / "config.yaml").read_text())["assets"][
        "smollm2"
    ]
    config["gguf"] = {"smollm2": {"parts": ["smollm2/model.gguf"], "sha256": "0" * 64}}
    config["hub"]["models"]["theta0"] = {"gguf": "smollm2", "eos_token": "<|endoftext|>"}
    return config


def test_a_gguf_source_is_valid():
    validate(_with_gguf(PAPER))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["hub"]["models"]["theta0"].update(gguf="gemma3"),
            r"'hub\.models\.theta0\.gguf': 'gemma3' is not a name in config 'gguf' "
            r"\(\['smollm2'\]\)",
        ),
        (
            lambda c: c["gguf"]["smollm2"].update(parts=["vader/model.gguf"]),
            r"'gguf\.smollm2\.parts\[0\]': asset 'vader' extracts no member 'model\.gguf'",
        ),
        (
            lambda c: c["gguf"]["smollm2"].update(parts=["gemma/x.gguf"]),
            r"'gguf\.smollm2\.parts\[0\]': no asset 'gemma'",
        ),
        (
            lambda c: c["hub"]["models"]["judge_lm"].update(eos_token="</s>"),
            r"'hub\.models\.judge_lm\.eos_token' applies to a gguf source only",
        ),
        (
            lambda c: c["hub"]["models"]["theta0"].update(revision=COMMIT),
            r"'hub\.models\.theta0\.revision' means something for a repo only",
        ),
        (
            lambda c: c["hub"]["datasets"].update(movie={"gguf": "smollm2", "files": ["*"]}),
            r"'hub\.datasets\.movie\.gguf': a GGUF file is a model of hub\.models",
        ),
        (
            lambda c: c["gguf"]["smollm2"].update(sha256="abc"),
            r"'gguf\.smollm2\.sha256'",
        ),
    ],
    ids=[
        "unknown-gguf",
        "part-not-a-member",
        "part-of-no-asset",
        "eos-token-without-gguf",
        "gguf-with-revision",
        "gguf-dataset",
        "bad-digest",
    ],
)
def test_malformed_gguf_names_the_key(edit, message):
    config = _with_gguf(PAPER)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)
