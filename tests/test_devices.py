"""GPU claiming without GPUs: the device count is injected, processes compete for lock files."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from lmlerp.jobs import devices

CTX = mp.get_context("fork")  # the claim needs no torch state; fork keeps the test fast


def _claim_and_hold(lock_dir, count, ready, release, results):
    """Claim a GPU, report it, keep it until told to exit (exit releases the lock)."""
    try:
        results.put(devices.claim("cuda", count=count, lock_dir=lock_dir, environ={}))
    except devices.DeviceError as err:
        results.put(f"error: {err}")
    ready.wait()
    release.wait()


def _run_holders(n, lock_dir, count):
    ready, release = CTX.Barrier(n + 1), CTX.Event()
    results = CTX.Queue()
    procs = [
        CTX.Process(target=_claim_and_hold, args=(lock_dir, count, ready, release, results))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    ready.wait(timeout=60)  # every process has claimed (or failed) and still holds its lock
    claimed = sorted(results.get(timeout=10) for _ in range(n))
    return claimed, procs, release


def _finish(procs, release):
    release.set()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0


def test_concurrent_jobs_get_distinct_gpus(tmp_path):
    claimed, procs, release = _run_holders(3, tmp_path, count=4)
    try:
        assert claimed == ["cuda:0", "cuda:1", "cuda:2"]
        # while they hold theirs, this process gets the only one left
        assert devices.claim("cuda", count=4, lock_dir=tmp_path, environ={}) == "cuda:3"
    finally:
        _finish(procs, release)


def test_no_free_gpu_is_an_error_and_exit_releases(tmp_path):
    claimed, procs, release = _run_holders(3, tmp_path, count=2)
    try:
        assert claimed[:2] == ["cuda:0", "cuda:1"]
        assert claimed[2].startswith("error: all 2 visible GPUs are claimed")
        assert "--resources gpu=N, N <= 2" in claimed[2]
    finally:
        _finish(procs, release)
    # the holders have exited: their GPUs are free again
    again, procs, release = _run_holders(2, tmp_path, count=2)
    _finish(procs, release)
    assert again == ["cuda:0", "cuda:1"]


def test_lock_files_follow_cuda_visible_devices(tmp_path):
    """Jobs that see different GPU subsets agree on physical ids: "2,3" and "3" collide on 3."""
    _, procs, release = _run_holders(1, tmp_path, count=4)  # takes physical 0
    _finish(procs, release)
    env = {"CUDA_VISIBLE_DEVICES": "3"}
    assert devices.claim("cuda", count=1, lock_dir=tmp_path, environ=env) == "cuda:0"
    env = {"CUDA_VISIBLE_DEVICES": "2,3"}  # physical 3 is held by this process now
    assert devices.claim("cuda", count=2, lock_dir=tmp_path, environ=env) == "cuda:0"
    with pytest.raises(devices.DeviceError, match="all 2 visible GPUs"):
        devices.claim("cuda", count=2, lock_dir=tmp_path, environ=env)
    names = sorted(p.name.split("-gpu")[1] for p in tmp_path.iterdir())
    assert names == ["0.lock", "2.lock", "3.lock"]


def test_lock_dir_from_the_environment(tmp_path):
    env = {devices.LOCK_DIR_ENV: str(tmp_path / "locks")}
    assert devices.claim("cuda", count=1, environ=env) == "cuda:0"
    assert len(list((tmp_path / "locks").glob("*-gpu0.lock"))) == 1


def test_under_slurm_the_job_uses_its_one_visible_gpu(tmp_path):
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "0"}
    assert devices.claim("cuda", count=1, lock_dir=tmp_path, environ=env) == "cuda:0"
    assert devices.claim("cuda", count=1, lock_dir=tmp_path, environ=env) == "cuda:0"
    assert not list(tmp_path.iterdir())  # nothing locked: the scheduler assigned the GPU


def test_inside_a_multi_gpu_allocation_jobs_claim_per_allocation(tmp_path):
    """Two allocations on one node both number their GPUs from 0: their locks must not collide."""
    first = {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0,1"}
    second = {"SLURM_JOB_ID": "8", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert devices.claim("cuda", count=2, lock_dir=tmp_path, environ=first) == "cuda:0"
    assert devices.claim("cuda", count=2, lock_dir=tmp_path, environ=first) == "cuda:1"
    assert devices.claim("cuda", count=2, lock_dir=tmp_path, environ=second) == "cuda:0"
    with pytest.raises(devices.DeviceError, match="all 2 visible GPUs"):
        devices.claim("cuda", count=2, lock_dir=tmp_path, environ=first)


@pytest.mark.parametrize("device", ["cpu", "cuda:0", "cuda:3"])
def test_explicit_devices_pass_through(tmp_path, device):
    assert devices.claim(device, count=0, lock_dir=tmp_path, environ={}) == device
    assert not list(tmp_path.iterdir())


def test_cuda_without_gpus_is_a_clear_error(tmp_path):
    with pytest.raises(devices.DeviceError, match=r"torch sees no CUDA device.*device: cpu"):
        devices.claim("cuda", count=0, lock_dir=tmp_path, environ={})


def test_bad_device_string_is_refused():
    with pytest.raises(ValueError, match="'gpu' is not cpu, cuda or cuda:N"):
        devices.claim("gpu", count=1, environ={})


# --- the deterministic set-up ---------------------------------------------------------------


@pytest.fixture
def restore_torch_settings():
    import torch

    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield torch
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(strict)


@pytest.mark.parametrize(("before", "after"), [(None, ":4096:8"), ("bogus", ":4096:8")])
def test_deterministic_sets_the_cublas_workspace(
    monkeypatch, restore_torch_settings, before, after
):
    from lmlerp import jobs

    if before is None:
        monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", before)
    jobs.deterministic(1)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == after
    assert restore_torch_settings.are_deterministic_algorithms_enabled()


def test_deterministic_keeps_the_smaller_deterministic_workspace(
    monkeypatch, restore_torch_settings
):
    from lmlerp import jobs

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    jobs.setup(1, "cpu")  # every torch job's entry point goes through `deterministic`
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_deterministic_after_cuda_work_is_an_error(monkeypatch, restore_torch_settings):
    from lmlerp import jobs

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(restore_torch_settings.cuda, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match=r"CUBLAS_WORKSPACE_CONFIG=None and CUDA is already"):
        jobs.deterministic(1)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
