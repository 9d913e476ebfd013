"""Bad configs: every case of tests/configs/bad.yaml is refused before any job runs, with one
line that names the offending key — by `lmlerp.config` directly (all cases), and by the real
`snakemake` command in a scratch directory (non-zero exit, no results/ or resources/ created)
for the first case of every category and every case checked when a run starts (`at: onstart`):
the command reaches `lmlerp.config.validate` by one code path, the same for every case."""

from __future__ import annotations

import collections
import copy
from pathlib import Path

import pytest
import yaml
from workflow_helpers import TINY, snakemake

from lmlerp.config import ConfigError, check_device, validate, visible_cuda_devices

CORPUS = yaml.safe_load((Path(__file__).parent / "configs" / "bad.yaml").read_text())
BASE = yaml.safe_load(TINY.read_text())
THROUGH_SNAKEMAKE = [
    case
    for k, case in enumerate(CORPUS)
    if case.get("at") == "onstart" or case["category"] not in {c["category"] for c in CORPUS[:k]}
]


def edited(case: dict) -> dict:
    """The tiny config with the case's `set` and `delete` edits applied (dotted keys)."""
    config = copy.deepcopy(BASE)
    for dotted, value in case.get("set", {}).items():
        *parents, last = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    for dotted in case.get("delete", []):
        *parents, last = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        del node[last]
    return config


def named(key: str) -> str:
    return f"config key '{key}'"


def test_corpus_is_large_and_spans_every_category():
    counts = collections.Counter(case["category"] for case in CORPUS)
    assert len(CORPUS) >= 25
    assert len({case["id"] for case in CORPUS}) == len(CORPUS)
    assert set(counts) >= {
        "type", "range", "unknown key", "empty grid", "duplicate coordinates", "missing base",
        "impossible device", "path outside the project",
    }  # fmt: skip


def test_every_edit_changes_the_config():
    for case in CORPUS:
        assert edited(case) != BASE, case["id"]


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_bad_config_is_refused_naming_the_key(case):
    config = edited(case)
    with pytest.raises(ConfigError) as error:
        validate(config)
        check_device(config["device"], visible=0)  # this machine's view: no CUDA device
    assert named(case["key"]) in str(error.value)


@pytest.mark.parametrize(
    ("device", "visible", "message"),
    [
        ("cuda", 0, "torch sees no CUDA device"),
        ("cuda:0", 0, "torch sees no CUDA device"),
        ("cuda:7", 2, r"only 2 CUDA device\(s\) are visible \(valid: cuda:0, cuda:1\)"),
        ("cuda:1", 1, r"valid: cuda:0\)"),
    ],
)
def test_impossible_device_names_the_valid_ones(device, visible, message):
    with pytest.raises(ConfigError, match=message):
        check_device(device, visible)


@pytest.mark.parametrize(("device", "visible"), [("cpu", 0), ("cuda", 1), ("cuda:1", 2)])
def test_possible_device_passes(device, visible):
    check_device(device, visible)


def test_snakemake_cases_cover_every_category():
    assert {c["category"] for c in THROUGH_SNAKEMAKE} == {c["category"] for c in CORPUS}


@pytest.mark.workflow
@pytest.mark.parametrize("case", THROUGH_SNAKEMAKE, ids=[case["id"] for case in THROUGH_SNAKEMAKE])
def test_snakemake_refuses_bad_config_before_any_job(tmp_path, case):
    if case.get("at") == "onstart":  # impossible only on a machine with fewer GPUs
        index = int(case["set"]["device"].partition(":")[2] or 0)
        if visible_cuda_devices() > index:
            pytest.skip(f"{case['set']['device']} exists on this machine")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(edited(case)))
    result = snakemake(tmp_path, configfile=bad)
    assert result.returncode != 0
    assert named(case["key"]) in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()
    assert "Finished jobid" not in result.stdout + result.stderr
