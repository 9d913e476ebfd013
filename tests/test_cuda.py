"""CUDA-only checks (marker `cuda`, skipped without a GPU; `bash bench/gpu_check.sh` runs them).

What no CPU test can show: the deterministic set-up under cuBLAS, the compiled decode step
against Hugging Face `generate`, the bf16 rebuild, the loss kernels under deterministic
algorithms, and how often the decode loop waits for the device.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lmlerp.generate import combiners, sampler
from lmlerp.space import merge
from lmlerp.train import loss as lm_loss

pytestmark = pytest.mark.cuda
VOCAB, EOS = 512, 0


def gpt2(seed: int, device: str = "cuda") -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_layer=2, n_head=2, n_embd=64,
        bos_token_id=EOS, eos_token_id=EOS, pad_token_id=EOS,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # large weights: greedy outputs that depend on positions and padding
        for name, weight in model.named_parameters():
            weight.mul_(15.0 if "ln" not in name else 1.0)
    return model.to(device)


def batch(device: str = "cuda") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    prompts = [[EOS, *torch.randint(1, VOCAB, (k,), generator=g).tolist()] for k in (3, 5, 8, 11)]
    ids, mask = sampler.left_pad(prompts, EOS)
    return ids.to(device), mask.to(device)


def test_deterministic_algorithms_run_matmuls_in_a_fresh_process():
    """A job's start (`jobs.setup`) then a CUDA matmul, a training step and `mean_nll`: without
    CUBLAS_WORKSPACE_CONFIG torch raises at the first matmul; (B, V, T) losses raise too."""
    code = textwrap.dedent(
        """
        import os
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        from lmlerp import jobs
        device = jobs.setup(1, "cuda")
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
        from lmlerp.train import loss
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_layer=1, n_head=2,
                                           n_embd=32)).to(device)
        ids = torch.randint(0, 64, (4, 16), device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(input_ids=ids, labels=ids).loss.backward()
        batch = (ids.cpu(), torch.ones_like(ids).cpu(), ids.cpu())
        print(loss.mean_nll(model, iter([batch]), device))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]


def test_training_steps_are_bitwise_reproducible_on_cuda():
    script = textwrap.dedent(
        """
        from lmlerp import jobs
        device = jobs.setup(1, "cuda")
        import hashlib, torch
        from transformers import GPT2Config, GPT2LMHeadModel
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=256, n_positions=32, n_layer=2, n_head=2,
                                           n_embd=64)).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            ids = torch.randint(0, 256, (8, 32), generator=g).to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                model(input_ids=ids, labels=ids).loss.backward()
            opt.step(); opt.zero_grad()
        flat = torch.cat([p.detach().float().flatten().cpu() for p in model.parameters()])
        print(hashlib.sha256(flat.numpy().tobytes()).hexdigest())
        """
    )
    digests = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert digests[0] == digests[1] and len(digests[0]) == 64


@pytest.mark.parametrize("compile", [False, True])
def test_greedy_decode_on_cuda_equals_hf_generate(compile):
    model = gpt2(0)
    ids, mask = batch()
    ours = sampler.decode(
        [model], combiners.plain, ids, mask, max_new_tokens=12, top_p=None, uniforms=None,
        eos_id=EOS, greedy=True, compile=compile,
    )  # fmt: skip
    theirs = model.generate(
        ids, attention_mask=mask, do_sample=False, max_new_tokens=12, pad_token_id=EOS
    )[:, ids.shape[1] :]
    assert torch.equal(ours, theirs)


def test_sampled_texts_are_the_same_on_cuda_bf16_compiled_as_eager():
    model = gpt2(1).to(torch.bfloat16)
    ids, mask = batch()
    uniforms = sampler.sequence_uniforms(0, [(0, b) for b in range(len(ids))], 20).cuda()
    runs = [
        sampler.decode(
            [model],
            combiners.plain,
            ids,
            mask,
            max_new_tokens=20,
            top_p=0.9,
            uniforms=uniforms,
            eos_id=EOS,
            compile=compile,
        )
        for compile in (False, True)
    ]
    assert torch.equal(runs[0], runs[1])


def test_bf16_rebuild_on_cuda_equals_the_fp32_combination_cast_once():
    bases = {name: gpt2(seed, "cpu") for seed, name in enumerate(["theta0", "theta_pos", "b"])}
    point = {"theta0": 0.2, "theta_pos": 1.3, "b": -0.5}
    interpolator = merge.Interpolator(bases, device="cuda", dtype=torch.bfloat16)
    rebuilt = interpolator.rebuild(point).state_dict()
    reference = merge.combine({n: m.state_dict() for n, m in bases.items()}, point)
    for name, value in reference.items():
        expected = value.to(torch.bfloat16)
        got = rebuilt[name].cpu()
        assert got.dtype == torch.bfloat16, name
        # fp32 accumulation on either side, in another order: at most one bf16 step apart
        assert torch.allclose(got.float(), expected.float(), rtol=2**-7, atol=1e-6), name


def test_decode_waits_for_the_device_a_few_times_per_step_at_most():
    """Host synchronisations of a 24-step greedy decode (no nucleus): the "all ended?" check
    runs every FINISHED_EVERY steps, not per token."""
    model = gpt2(2)
    ids, mask = batch()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sampler.decode(
                [model], combiners.plain, ids, mask, max_new_tokens=24, top_p=None,
                uniforms=None, eos_id=EOS, greedy=True,
            )  # fmt: skip
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) <= 24 // sampler.FINISHED_EVERY + 4, [str(w.message) for w in syncs]


def test_mean_nll_on_cuda_under_deterministic_algorithms_matches_the_cpu():
    model = gpt2(3, "cpu")
    ids, mask = batch("cpu")
    labels = ids.masked_fill(mask == 0, -100)
    strict = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        on_cuda = lm_loss.mean_nll(copy.deepcopy(model), iter([(ids, mask, labels)]), "cuda")
    finally:
        torch.use_deterministic_algorithms(strict)
    on_cpu = lm_loss.mean_nll(model, iter([(ids, mask, labels)]), "cpu")
    assert on_cuda == pytest.approx(on_cpu, rel=1e-4)
