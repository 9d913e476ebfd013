"""Fetching and extracting offline assets, on fake artifacts and a fake pip (no network)."""

from __future__ import annotations

import io
import itertools
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from lmlerp.data.assets import AssetError, extract, fetch, sha256

WHEEL = "fakepkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
SDIST = "fakepkg-1.0.tar.gz"
INNER = "fakepkg-1.0/resources/corpus.tar.gz"
NESTED = f"{INNER}!corpus/sentences.txt"
SENTENCES = b"1\t2.5\tA fine film.\r\n2\t-3.0\tA dreadful film.\r\n"
NEVER_PIP = (sys.executable, "-c", "import sys; sys.exit('pip must not run')")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def sdist(tmp_path: Path) -> Path:
    """An sdist holding a nested tar.gz, like vaderSentiment's hutto_ICWSM_2014.tar.gz."""
    inner = _tar_gz({"corpus/sentences.txt": SENTENCES, "corpus/README": b"read me"})
    path = tmp_path / "artifacts" / SDIST
    path.parent.mkdir()
    path.write_bytes(_tar_gz({INNER: inner, "fakepkg-1.0/setup.py": b"", "fakepkg-1.0/x.py": b""}))
    return path


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / "artifacts" / WHEEL
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fakepkg/__init__.py", "")
        zf.writestr("fakepkg/test/test_data/lee.cor", "news one\nnews two\n")
    return path


def _asset(artifact: Path, fmt: str, **overrides) -> dict:
    asset = {
        "requirement": "fakepkg==1.0",
        "format": fmt,
        "filename": artifact.name,
        "sha256": sha256(artifact),
        "members": {},
    }
    return asset | overrides


def _fake_pip(tmp_path: Path, artifact: Path) -> tuple[tuple[str, ...], Path]:
    """A pip that records its arguments and 'downloads' `artifact` into its `-d` directory."""
    script, argv = tmp_path / "fake_pip.py", tmp_path / "pip_argv.json"
    script.write_text(
        "import json, shutil, sys\n"
        f"open({str(argv)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "dest = sys.argv[sys.argv.index('-d') + 1]\n"
        f"shutil.copy({str(artifact)!r}, dest)\n"
    )
    return (sys.executable, str(script)), argv


def _values(argv: list[str], option: str) -> list[str]:
    """Every value given to `option` in `argv`, in order."""
    return [value for key, value in itertools.pairwise(argv) if key == option]


def test_preseeded_artifact_is_used_without_pip(tmp_path, sdist):
    assert fetch("vader", _asset(sdist, "sdist"), sdist.parent, pip=NEVER_PIP) == sdist


def test_preseeded_artifact_with_wrong_hash_names_asset_and_both_hashes(tmp_path, sdist):
    wrong = "0" * 64
    with pytest.raises(AssetError) as err:
        fetch("vader", _asset(sdist, "sdist", sha256=wrong), sdist.parent, pip=NEVER_PIP)
    message = str(err.value)
    assert "'vader'" in message and SDIST in message
    assert wrong in message and sha256(sdist) in message


def test_pip_failure_says_how_to_preseed(tmp_path, wheel):
    failing = (
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('ERROR: No matching distribution found\\n'); sys.exit(1)",
    )
    downloads = tmp_path / "downloads"
    with pytest.raises(AssetError) as err:
        fetch("gensim", _asset(wheel, "wheel"), downloads, pip=failing)
    message = str(err.value)
    assert "'gensim'" in message and "fakepkg==1.0" in message
    assert "No matching distribution found" in message  # pip's own words
    assert "on a machine with PyPI access run `pip download --no-deps" in message
    assert f"copy {WHEEL} (sha256 {sha256(wheel)}) into {downloads}/" in message
    assert list(downloads.iterdir()) == []  # no half-downloaded leftovers


def test_download_lands_in_downloads_dir(tmp_path, sdist):
    pip, argv = _fake_pip(tmp_path, sdist)
    downloads = tmp_path / "downloads"
    got = fetch("vader", _asset(sdist, "sdist"), downloads, pip=pip)
    assert got == downloads / SDIST
    assert got.read_bytes() == sdist.read_bytes()
    assert [p.name for p in downloads.iterdir()] == [SDIST]
    args = json.loads(argv.read_text())
    assert args[0] == "download" and args[-1] == "fakepkg==1.0"
    assert "--no-deps" in args and _values(args, "--no-binary") == [":all:"]
    assert "--platform" not in args


def test_download_with_wrong_hash_is_rejected_and_not_kept(tmp_path, sdist):
    pip, _ = _fake_pip(tmp_path, sdist)
    downloads = tmp_path / "downloads"
    with pytest.raises(AssetError, match=r"'vader'.*expected 1{64}"):
        fetch("vader", _asset(sdist, "sdist", sha256="1" * 64), downloads, pip=pip)
    assert list(downloads.iterdir()) == []


def test_download_of_another_file_is_rejected(tmp_path, sdist):
    pip, _ = _fake_pip(tmp_path, sdist)
    with pytest.raises(AssetError, match=r"pip downloaded \['fakepkg-1\.0\.tar\.gz'\]"):
        fetch("vader", _asset(sdist, "sdist", filename="other-1.0.tar.gz"), tmp_path / "d", pip=pip)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            WHEEL,
            {
                "--implementation": ["cp"],
                "--python-version": ["3.11"],
                "--abi": ["cp311"],
                "--platform": ["manylinux_2_28_x86_64"],
            },
        ),
        (
            "fakepkg-1.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            {
                "--python-version": ["3.11"],
                "--platform": ["manylinux_2_24_x86_64", "manylinux_2_28_x86_64"],
            },
        ),
        (
            "fakepkg-1.0-py2.py3-none-any.whl",
            {
                "--implementation": ["py"],
                "--python-version": [],  # "3" would mean 3.0 to pip's Requires-Python check
                "--abi": ["none"],
                "--platform": ["any"],
            },
        ),
    ],
)
def test_wheel_is_requested_with_its_own_tags(tmp_path, wheel, filename, expected):
    artifact = wheel.rename(wheel.with_name(filename))
    pip, argv = _fake_pip(tmp_path, artifact)
    fetch("gensim", _asset(artifact, "wheel"), tmp_path / "downloads", pip=pip)
    args = json.loads(argv.read_text())
    assert "--no-deps" in args and _values(args, "--only-binary") == [":all:"]
    for option, values in expected.items():
        assert _values(args, option) == values


def test_nested_member_is_extracted_byte_for_byte(tmp_path, sdist):
    out = tmp_path / "resources" / "vader"
    extract("vader", sdist, {"movies.tsv": NESTED, "setup.py": "fakepkg-1.0/setup.py"}, out)
    assert sorted(p.name for p in out.iterdir()) == ["movies.tsv", "setup.py"]
    assert (out / "movies.tsv").read_bytes() == SENTENCES  # CRLF kept


def test_wheel_member_is_extracted(tmp_path, wheel):
    out = tmp_path / "gensim"
    extract("gensim", wheel, {"lee.cor": "fakepkg/test/test_data/lee.cor"}, out)
    assert (out / "lee.cor").read_text() == "news one\nnews two\n"


def test_missing_member_names_it_the_archive_and_close_names(tmp_path, sdist):
    with pytest.raises(AssetError) as err:
        extract("vader", sdist, {"m.tsv": f"{INNER}!corpus/sentence.txt"}, tmp_path / "out")
    message = str(err.value)
    assert "'vader'" in message and "'corpus/sentence.txt'" in message
    assert f"{SDIST}!{INNER}" in message
    assert "close names: corpus/sentences.txt" in message


@pytest.mark.parametrize("dest", ["../x", "a/b", "..", ""])
def test_destination_must_be_a_plain_file_name(tmp_path, sdist, dest):
    with pytest.raises(AssetError, match="must be a plain file name"):
        extract("vader", sdist, {dest: NESTED}, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()


def test_failed_extraction_leaves_no_output_dir(tmp_path, sdist):
    out = tmp_path / "resources" / "vader"
    members = {"movies.tsv": NESTED, "missing.txt": "fakepkg-1.0/nope.txt"}
    with pytest.raises(AssetError, match=r"nope\.txt"):
        extract("vader", sdist, members, out)
    assert list(out.parent.iterdir()) == []  # neither out_dir nor its temporary
