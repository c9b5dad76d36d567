"""The weighted sum of the component rows, ``out = w @ C``, accumulated in fp32 whatever the storage dtype.

- fp32 components on the proxy's device: one GEMV (``torch.matmul``), as fast as memory allows.
- bf16 components on CPU: a small C kernel (compiled once per machine with the system's C compiler into
  ``<cache>/kernels``, called through ctypes): one streaming pass that reads all K rows of a block of columns
  together (up to 8 per pass), sums in fp32 and rounds to bf16 once (round to nearest even, as torch). It
  ran at about the copy bandwidth here; torch's own bf16 GEMV (which rounds the weights to bf16) at a third
  of it, a row-by-row accumulation at half, the staged fp32 path below at about a tenth.
- everything else (fp16, no compiler, a GPU, components kept in host memory for a GPU proxy): blocks of
  columns copied into an fp32 staging buffer on the proxy's device (row by row, so pinned host rows
  travel with ``non_blocking`` copies), one GEMV per block, then one cast into ``out``.

Every path computes ``sum_k w_k * C[k]`` in fp32 and rounds once to ``out``'s dtype.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

CPU_BLOCK = 1 << 16  # columns per staged block on CPU (K x 256 KiB of fp32)
DEVICE_BLOCK = 1 << 22  # ... on a GPU
NATIVE_ENV = "DEMIX_NATIVE_MERGE"  # "0" turns the C kernel off (the staged torch path is used)

_KERNEL = r"""
#include <stdint.h>
#include <string.h>
#define BLOCK 8192
#define GROUP 8
static inline float bf2f(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static inline uint16_t f2bf(float f) {  /* round to nearest even; NaN stays NaN */
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
#define T(i) w[i] * bf2f(p##i[j])
#define S1 T(0)
#define S2 S1 + T(1)
#define S3 S2 + T(2)
#define S4 S3 + T(3)
#define S5 S4 + T(4)
#define S6 S5 + T(5)
#define S7 S6 + T(6)
#define S8 S7 + T(7)
/* One pass over up to GROUP rows: the first group starts the fp32 sum, the last one rounds it into out. */
#define PASS(SUM)                                                                    \
    if (first && last) { for (int64_t j = 0; j < m; j++) o[j] = f2bf(SUM); }           \
    else if (first) { for (int64_t j = 0; j < m; j++) acc[j] = SUM; }                 \
    else if (last) { for (int64_t j = 0; j < m; j++) o[j] = f2bf(acc[j] + (SUM)); }   \
    else { for (int64_t j = 0; j < m; j++) acc[j] += SUM; }
static void group(int g, const uint16_t *p0, int64_t ld, const float *w, int64_t m, float *acc, uint16_t *o,
                  int first, int last) {
    const uint16_t *p1 = p0 + ld, *p2 = p1 + ld, *p3 = p2 + ld, *p4 = p3 + ld, *p5 = p4 + ld, *p6 = p5 + ld,
                   *p7 = p6 + ld;
    switch (g) {
        case 1: PASS(S1) break;
        case 2: PASS(S2) break;
        case 3: PASS(S3) break;
        case 4: PASS(S4) break;
        case 5: PASS(S5) break;
        case 6: PASS(S6) break;
        case 7: PASS(S7) break;
        default: PASS(S8) break;
    }
}
/* out[j] = bf16(sum_k w[k] * C[k * ld + j]) for j < n, accumulated in fp32 and rounded once. All rows of a block
   of columns are read in one pass (up to GROUP at a time), so the K input streams and the output stream flow
   together; with more than GROUP rows, a block's partial sums wait in an fp32 buffer in cache. */
void demix_merge_bf16(const uint16_t *C, int64_t ld, int64_t K, int64_t n, const float *w, uint16_t *out,
                      int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t a = 0; a < n; a += BLOCK) {
        const int64_t m = (n - a < BLOCK) ? n - a : BLOCK;
        float acc[BLOCK];
        for (int64_t k = 0; k < K; k += GROUP) {
            const int g = (int)(K - k < GROUP ? K - k : GROUP);
            group(g, C + k * ld + a, ld, w + k, m, acc, out + a, k == 0, k + g == K);
        }
    }
}
"""

_lock = threading.Lock()
_native: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable


def native_kernel() -> ctypes.CDLL | None:
    """The compiled bf16 kernel, or None when it is turned off or no C compiler could build it."""
    global _native
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    with _lock:
        if _native is None:
            _native = _build() or False
        return _native if isinstance(_native, ctypes.CDLL) else None


def _build() -> ctypes.CDLL | None:
    from demix_core.data.fetch import cache_dir

    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None
    tag = hashlib.sha256((_KERNEL + cc).encode()).hexdigest()[:16]
    folder = cache_dir() / "kernels"
    lib = folder / f"merge_bf16-{tag}.so"
    if not lib.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                src, so = Path(tmp) / "merge.c", Path(tmp) / "merge.so"
                src.write_text(_KERNEL, encoding="ascii")
                subprocess.run([cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", str(src), "-o", str(so)],
                               check=True, capture_output=True, timeout=120)
                os.replace(so, lib)
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        dll = ctypes.CDLL(str(lib))
    except OSError:
        return None
    dll.demix_merge_bf16.restype = None
    dll.demix_merge_bf16.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    return dll


def weighted_sum(components: torch.Tensor, weights: torch.Tensor, out: torch.Tensor, *,
                 native: bool = True) -> None:
    """Write ``weights @ components`` into ``out``, accumulated in fp32, rounded once.

    Args:
        components: (K, N) rows, on ``out``'s device or in (pinned) host memory; any float dtype.
        weights: (K,) weights (used as fp32; normalise them first when they should sum to 1).
        out: (N,) destination on the merge device, written in place; any float dtype.
        native: Allow the C kernel (bf16 on CPU).
    """
    w = weights.detach().to(device="cpu", dtype=torch.float32).contiguous()
    same = components.device == out.device
    if same and components.dtype == torch.float32 and out.dtype == torch.float32:
        torch.matmul(w.to(out.device).unsqueeze(0), components, out=out.unsqueeze(0))  # (1,K)@(K,N)->(1,N)
        return
    if (native and same and out.device.type == "cpu" and components.dtype == torch.bfloat16
            and out.dtype == torch.bfloat16 and out.is_contiguous() and components.stride(1) == 1):
        kernel = native_kernel()
        if kernel is not None:
            kernel.demix_merge_bf16(components.data_ptr(), components.stride(0), components.shape[0], out.numel(),
                                    w.data_ptr(), out.data_ptr(), torch.get_num_threads())
            return
    _staged(components, w.to(out.device), out)


def _staged(components: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
    """Blocks of columns cast (and moved) into an fp32 stage on ``out``'s device, one GEMV each."""
    k, n = components.shape
    block = min(n, CPU_BLOCK if out.device.type == "cpu" else DEVICE_BLOCK)
    stage = torch.empty((k, block), dtype=torch.float32, device=out.device)  # (K, B)
    acc = torch.empty((1, block), dtype=torch.float32, device=out.device)  # (1, B)
    w1 = w.unsqueeze(0)  # (1, K)
    pinned = components.device.type == "cpu" and out.device.type != "cpu" and components.is_pinned()
    for a in range(0, n, block):
        b = min(n, a + block)
        st = stage[:, : b - a]
        for i in range(k):  # row by row: each source slice is contiguous (a pinned host row copies async)
            st[i].copy_(components[i, a:b], non_blocking=pinned)
        torch.matmul(w1, st, out=acc[:, : b - a])
        out[a:b].copy_(acc[0, : b - a])
