"""The point cache: every evaluated path point stored under the digest of what it depends on.

A chunk job (the scheduling unit) looks each of its points up and evaluates only the missing
ones, so a grid that grows re-evaluates only its new points, a chunk killed mid-way keeps the
points it finished, and a setting that cannot change a result (a batch size, `points_per_job`, a
figure) re-evaluates nothing. The key (`point_key`) is the sha256 of: the point's coefficients
with each base's weights sha256 (DExperts: α, filter_p and the three bases), the generation
settings and seed (not the batch size: samples do not depend on batching,
`generate.sampler.sequence_uniforms`), the prompts, the test sentences and Fig-4 words, the
evaluation settings that change a number, the scorers' settings and the digests of their model
files, the tokenizer, device, dtype and the evaluate script's code fingerprint
(`lmlerp.jobs.code`).

Layout: `<root>/<key[:2]>/<key>/` holds `samples.parquet` (the point's samples, whatever their
columns), `metrics.json` (its metrics row) and `key.json` (what the key was made of, to read).
An entry appears by one directory rename, so a killed writer leaves only a hidden temporary and
two jobs writing the same key leave one complete entry. A killed writer's temporary is removed
when its key is stored again, once it is `STALE_S` old: a live writer's lasts milliseconds.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lmlerp.io import digests
from lmlerp.io.atomic import read_parquet
from lmlerp.space import families, paths

# Settings that change speed, scheduling or what else is written, never a point's numbers.
NOT_IN_KEY = {
    "generation": {"batch_size"},
    "evaluation": {"batch_size", "points_per_job", "materialize"},
    "scorers": {"batch_size"},
}
ENTRY_FILES = ("samples.parquet", "metrics.json")
# The tokenizer's files in a model directory (its weights count through their sha256).
TOKENIZER = ("tokenizer", "vocab", "merges", "special_tokens_map")
STALE_S = 5.0  # a temporary this old is a killed writer's (writing an entry takes milliseconds)


def point_key(parts: Mapping[str, Any]) -> str:
    """The cache key of a point: `digests.digest` of everything its result depends on."""
    return digests.digest(parts)


def result_settings(section: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A config section without the keys that cannot change a result (`NOT_IN_KEY`)."""
    return {k: v for k, v in settings.items() if k not in NOT_IN_KEY.get(section, set())}


class PointCache:
    """Finished points under `root`, addressed by `point_key`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The entry directory of `key` (sharded by its first two hex digits)."""
        return self.root / key[:2] / key

    def get(self, key: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """(samples, metrics row) of a finished point, or None if it is not cached."""
        entry = self.path(key)
        if not all((entry / name).is_file() for name in ENTRY_FILES):
            return None
        metrics = json.loads((entry / "metrics.json").read_text())
        return read_parquet(entry / "samples.parquet"), metrics

    def put(
        self,
        key: str,
        samples: pd.DataFrame,
        metrics: Mapping[str, Any],
        parts: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a finished point atomically: built in a hidden temporary, renamed into place.

        If another job stored the same key meanwhile, its entry (the same result) is kept.
        `parts`, the key's ingredients, is written beside it for a reader.
        """
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale(key)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=final.parent))
        try:
            samples.to_parquet(tmp / "samples.parquet", index=False)
            (tmp / "metrics.json").write_text(json.dumps(dict(metrics), indent=1))
            if parts is not None:
                (tmp / "key.json").write_text(json.dumps(parts, indent=1, default=str))
            tmp.chmod(0o755)
            os.rename(tmp, final)  # atomic; fails if `final` exists (another job was first)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or self.get(key) is None:
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _remove_stale(self, key: str) -> None:
        """Delete the temporaries of `key` that killed writers left (older than `STALE_S`)."""
        now = time.time()
        for path in self.path(key).parent.glob(f".{key}.*.tmp"):
            try:
                if now - path.stat().st_mtime > STALE_S:
                    shutil.rmtree(path, ignore_errors=True)
            except FileNotFoundError:
                pass  # its writer has just renamed or removed it

    def __len__(self) -> int:
        """The number of finished entries."""
        return sum(1 for _ in self.root.glob("??/*/metrics.json"))


def point_parts(
    family: str,
    point: Mapping[str, Any],
    base_sha256: Mapping[str, str],
    filter_p: float | None,
    spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What makes a point's model: its coefficients with each base's weights sha256 (the recipe's
    content), or for DExperts its α, filter_p and the sha256 of θ0, θ+ and θ−, or for a TIES,
    DARE or SLERP point of a merge family (`spec`) its method and params with the bases' sha256.

    The family name is not part of it: g3 on the line α + β = 0 is the same model as g2 (same
    bases, same coefficients), and shares its entries; so does task arithmetic along θ+ − θ−,
    and a mergekit YAML with the same merge as a config family.
    """
    if family == paths.DEXPERTS:
        names = paths.FAMILY_BASES[paths.DEXPERTS]
        return {
            "dexperts": {"alpha": point["alpha"], "filter_p": filter_p},
            "bases": {name: base_sha256[name] for name in names},
        }
    coefficients, definition = families.point_weights(family, point, spec)
    if coefficients is None:
        used = families.bases_of(definition)
        return {"merge": definition, "bases": {name: base_sha256[name] for name in used}}
    return {"weights": {name: [base_sha256[name], c] for name, c in coefficients.items()}}


def shared_parts(
    *,
    sampling: Mapping[str, Any],
    settings: Mapping[str, Any],
    scorer_settings: Mapping[str, Any],
    scorer_dirs: Mapping[str, str | os.PathLike],
    tokenizer_dir: str | os.PathLike,
    prompts: pd.DataFrame,
    test_sentences: Any,
    device: str,
    dtype: str,
    code: str,
) -> dict[str, Any]:
    """What every point of a job shares in its key: settings, data, scorers, device, code.

    Scorer models and the tokenizer count by the digest of their files (a retrained judge misses
    the cache), the prompts by their table's digest, the code by the evaluate script's
    fingerprint. `device` is the configured one (cuda, not the claimed cuda:3).
    """
    tokenizer_files = [p for p in Path(tokenizer_dir).iterdir() if p.name.startswith(TOKENIZER)]
    return {
        "generation": result_settings("generation", sampling),
        "evaluation": result_settings("evaluation", settings),
        "scorers": result_settings("scorers", scorer_settings),
        "scorer_models": {name: digests.files_digest([d]) for name, d in scorer_dirs.items()},
        "tokenizer": digests.files_digest(sorted(tokenizer_files)),
        "prompts": digests.frame_digest(prompts),
        "test_sentences": digests.digest(test_sentences),
        "device": device,
        "dtype": dtype,
        "code": code,
    }
