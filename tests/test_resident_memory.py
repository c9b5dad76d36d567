"""Memory that scales: the plan printed before loading, host placement for a GPU, one-line errors; the
fp32-accumulated merge of half-precision components, bounded against an fp32 merge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from demix_core.errors import MergeError
from demix_core.io.checkpoints import open_checkpoint
from demix_core.io.device import GIB, plan_memory
from demix_core.merge import ResidentComponents
from demix_core.merge.accumulate import native_kernel, weighted_sum

ROOT = Path(__file__).resolve().parent.parent


def test_plan_on_cpu_counts_components_and_one_proxy() -> None:
    plan = plan_memory(7, 1_000_000, torch.bfloat16, torch.device("cpu"), host_available=64 * GIB)
    assert plan.needed_bytes == 8 * 1_000_000 * 2 and plan.placement == "device"
    assert plan.line().startswith("memory plan: 7+1 x 1,000,000 x 2 B = ") and "in host memory" in plan.line()
    with pytest.raises(MergeError) as exc:
        plan_memory(7, 10**9, torch.bfloat16, torch.device("cpu"), host_available=4 * GIB)
    msg = str(exc.value)
    assert "\n" not in msg and "need 14.90 GiB" in msg and "4.00 GiB is available" in msg


def test_plan_for_a_gpu_keeps_components_in_host_memory_when_they_do_not_fit() -> None:
    gpu = torch.device("cuda", 0)
    fits = plan_memory(7, 10**9, torch.bfloat16, gpu, device_free=80 * GIB, host_available=8 * GIB)
    assert fits.placement == "device" and "on cuda:0" in fits.line()
    host = plan_memory(7, 1_700_000_000, torch.bfloat16, gpu, device_free=16 * GIB, host_available=64 * GIB)
    assert host.placement == "host" and "pinned host memory" in host.line() and "does not fit cuda:0" in host.line()
    with pytest.raises(MergeError, match=r"the components need 22\.17 GiB and 8\.00 GiB is available"):
        plan_memory(7, 1_700_000_000, torch.bfloat16, gpu, device_free=16 * GIB, host_available=8 * GIB)


def test_loading_refuses_when_host_memory_is_short(tiny_components: list[Path]) -> None:
    ckpts = [open_checkpoint(p) for p in tiny_components]
    lines: list[str] = []
    res = ResidentComponents(ckpts, device="cpu", log=lines.append)
    assert lines == [res.plan.line()] and res.plan.needed_bytes == 4 * res.numel * 4
    with pytest.raises(MergeError, match="not enough host memory"):
        ResidentComponents(ckpts, device="cpu", host_available=res.plan.needed_bytes - 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line(tiny_components: list[Path]) -> None:
    with pytest.raises(MergeError, match="no CUDA GPU is available"):
        ResidentComponents([open_checkpoint(p) for p in tiny_components], device="cuda")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--device", "cuda",
                          "--params", "1.7e9", "--k", "7"], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("error: ") and "no CUDA GPU" in run.stderr


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_merge_is_bounded_by_the_fp32_merge(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    comps = (torch.randn(5, 70_001, generator=g) * 0.05).to(dtype)  # odd N: a partial last block
    w = torch.tensor([0.31, 0.07, 0.22, 0.15, 0.25])
    ref = w @ comps.float()  # the fp32 merge of the same stored values
    for native in (True, False):
        out = torch.empty(comps.shape[1], dtype=dtype)
        weighted_sum(comps, w, out, native=native)
        # One rounding to the storage dtype: within half an ulp of the fp32 result.
        ulp = 2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11
        assert (out.float() - ref).abs().le(ref.abs() * ulp + 1e-7).all()
        assert (out.float() - ref).abs().max() > 0  # the bound is not vacuous: the merge really rounds


@pytest.mark.parametrize("k", [1, 7, 9, 17])  # one pass, and several passes of up to 8 rows
def test_native_kernel_any_number_of_rows(k: int) -> None:
    if native_kernel() is None:
        pytest.skip("no C compiler here: the staged torch path is used")
    g = torch.Generator().manual_seed(k)
    comps = (torch.randn(k, 20_001, generator=g) * 0.05).to(torch.bfloat16)
    w = torch.rand(k, generator=g)
    w /= w.sum()
    out = torch.empty(20_001, dtype=torch.bfloat16)
    weighted_sum(comps, w, out)
    ref = w @ comps.float()
    assert (out.float() - ref).abs().le(ref.abs() * 2.0 ** -8 + 1e-7).all()


def test_native_kernel_matches_torch_rounding() -> None:
    if native_kernel() is None:
        pytest.skip("no C compiler here: the staged torch path is used")
    g = torch.Generator().manual_seed(1)
    comps = (torch.randn(3, 50_000, generator=g)).to(torch.bfloat16)
    w = torch.tensor([0.5, 0.25, 0.25])  # exact in fp32: both paths give the same fp32 sums
    a, b = torch.empty(50_000, dtype=torch.bfloat16), torch.empty(50_000, dtype=torch.bfloat16)
    weighted_sum(comps, w, a, native=True)
    weighted_sum(comps, w, b, native=False)
    assert torch.equal(a, b) and torch.equal(a, (w @ comps.float()).to(torch.bfloat16))


def test_fp32_components_on_host_staged_like_a_gpu_proxy() -> None:
    """The staged path (host rows copied block by block) equals the one-GEMV path for fp32."""
    g = torch.Generator().manual_seed(2)
    comps = torch.randn(4, 200_003, generator=g)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4])
    gemv = torch.empty(200_003)
    weighted_sum(comps, w, gemv)
    staged = torch.empty(200_003, dtype=torch.bfloat16)
    weighted_sum(comps, w, staged)  # fp32 rows into a bf16 proxy: staged blocks
    assert torch.allclose(gemv, w @ comps, rtol=1e-6, atol=1e-6)
    assert (staged.float() - gemv).abs().le(gemv.abs() * 2.0 ** -8 + 1e-6).all()
