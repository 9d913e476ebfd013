"""Merge families on the tiny run: a mergekit YAML as a point and as a family, evaluated in memory
on the same protocol, no merged weights written (docs/merging.md)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, TINY, copy_run, snakemake

from lmlerp.space.recipes import Recipe

pytestmark = pytest.mark.workflow
EXAMPLE = REPO / "configs" / "mergekit" / "ties_sentiment.yaml"
BASES = {f"results/models/{name}": name for name in ("theta0", "theta_pos", "theta_neg")}
MERGES = {  # `ties` is the YAML's merge written as a config family: the same points
    "ties": {"method": "ties", "base": "theta0", "models": {"theta_pos": 1.0, "theta_neg": -1.0},
             "density": [0.5], "lambda": [1.0], "trim": "tensor"},
    "mk_point": {"method": "mergekit", "yaml": "ties_sentiment.yaml", "bases": BASES},
    "mk_density": {"method": "mergekit", "yaml": "ties_sentiment.yaml", "bases": BASES,
                   "sweep": {"parameter": "density", "values": [0.3, 0.5]}},
}  # fmt: skip
COUNTS = re.compile(r"evaluate (\w+): (\d+) points, (\d+) from the cache, (\d+) to evaluate")


def config_with_merges(work: Path, merges: dict) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config["paths"]["merges"] = merges
    config["evaluation"]["materialize"] = "recipe"  # evaluated without writing weights
    path = work / "merges.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def counts(work: Path, family: str) -> tuple[int, ...]:
    (log,) = (work / "logs" / "evaluate" / family).glob("*.log")
    found = COUNTS.search(log.read_text())
    assert found, log.read_text()[-2000:]
    return tuple(int(found.group(k)) for k in (2, 3, 4))


@pytest.fixture(scope="module")
def merged(tiny_run, tmp_path_factory) -> Path:
    """The tiny run with three merge families: the config TIES first, then the mergekit YAML
    as one point and as a density sweep (a second run, so that the cache is filled)."""
    work = copy_run(tiny_run, tmp_path_factory.mktemp("merges") / "run")
    for stale in (
        "results/cache",
        *(f"{d}/evaluate/{f}" for d in ("results", "logs") for f in MERGES),
    ):
        shutil.rmtree(work / stale, ignore_errors=True)  # a reused run may hold them: count anew
    shutil.copy(EXAMPLE, work / "ties_sentiment.yaml")
    configfile = config_with_merges(work, MERGES)
    for targets in (["ties"], ["mk_point", "mk_density"]):
        tables = [f"results/tables/{family}.parquet" for family in targets]
        done = snakemake(work, *tables, configfile=configfile)
        assert done.returncode == 0, done.stderr[-5000:]
    return work


def test_a_mergekit_yaml_is_the_same_merge_as_its_config_family(merged):
    """The YAML's point is the config TIES point (same method and params): a cache hit."""
    assert counts(merged, "ties") == (1, 0, 1)
    assert counts(merged, "mk_point") == (1, 1, 0)
    assert counts(merged, "mk_density") == (2, 1, 1)  # density 0.5 again, 0.3 new
    ties = pd.read_parquet(merged / "results/tables/ties.parquet").set_index("kind")
    point = pd.read_parquet(merged / "results/tables/mk_point.parquet").set_index("kind")
    for metric in ("positive_score", "perplexity", "nll_pos"):
        assert point[metric].equals(ties[metric]), metric


def test_a_mergekit_sweep_is_a_family_and_nothing_is_written_but_recipes(merged):
    table = pd.read_parquet(merged / "results/tables/mk_density.parquet")
    pooled = table[table.kind == "all"]
    assert list(pooled.point) == ["d0.3", "d0.5"] and list(pooled.alpha) == [0.3, 0.5]
    assert pooled.positive_score.between(0, 1).all() and (pooled.perplexity > 1).all()
    recipes = sorted((merged / "results/evaluate/mk_density").glob("c*/recipes/*/recipe.json"))
    assert [r.parent.name for r in recipes] == ["d0.3", "d0.5"]
    recipe = Recipe.read(recipes[0])
    assert recipe.method == "ties" and recipe.params["densities"] == {
        "theta_neg": 0.3, "theta_pos": 0.3,
    }  # fmt: skip
    assert next(iter(recipe.bases)) == "theta0"  # the base first: class, config, tokenizer
    assert set(recipe.bases) == {"theta0", "theta_pos", "theta_neg"}
    written = list((merged / "results/evaluate").glob("mk_*/**/*.safetensors"))
    assert written == []


def test_an_unsupported_yaml_stops_the_dry_run_naming_the_feature(tmp_path):
    (tmp_path / "sliced.yaml").write_text(
        yaml.safe_dump({"merge_method": "slerp", "slices": [], "parameters": {"t": 0.5}})
    )
    entry = {"method": "mergekit", "yaml": "sliced.yaml"}
    configfile = config_with_merges(tmp_path, {"sliced": entry})
    done = snakemake(tmp_path, "-n", configfile=configfile, timeout=300)
    assert done.returncode != 0
    message = "config key 'paths.merges.sliced.yaml' (sliced.yaml) at slices: slices"
    assert message in done.stdout + done.stderr
