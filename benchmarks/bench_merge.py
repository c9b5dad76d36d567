"""In-place merge speed against the machine's copy bandwidth and mergekit's Python API.

Prints, in one run, for each model size: the measured copy bandwidth; our in-place linear merge time and
effective bandwidth ((K+1)*N*bytes / time: K component rows read, one proxy buffer written); mergekit's
``run_merge`` merging the same checkpoints disk to disk; and the ratio.

    python benchmarks/bench_merge.py                       # ~25M and ~100M params, K=4, fp32, CPU
    python benchmarks/bench_merge.py --device cuda --dtype bfloat16 --params 1.7e9 --k 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402

from demix_core.merge import ResidentComponents, resolve_device  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, dtype: torch.dtype, nbytes: int = 1 << 29) -> float:
    """Bytes read + written per second by a plain tensor copy of ``nbytes``."""
    n = nbytes // torch.tensor([], dtype=dtype).element_size()
    src = torch.ones(n, dtype=dtype, device=device)
    dst = torch.empty_like(src)
    t = median_time(lambda: dst.copy_(src), 7, device)
    return 2 * nbytes / t


def config_for(params: float, vocab: int | None = None):
    """A Qwen2 config with about ``params`` parameters (untied embeddings, like real checkpoints)."""
    from transformers import Qwen2Config

    hidden = 512 if params < 6e7 else 768 if params < 4e8 else 2048
    heads = hidden // 64
    inter = hidden * 3
    vocab = vocab or (8192 if params < 4e8 else 151_936)
    per_layer = 2 * hidden * hidden + 2 * hidden * (hidden // 2) + 3 * hidden * inter + 2 * hidden
    layers = max(1, round((params - 2 * vocab * hidden) / per_layer))
    return Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter,
                       num_hidden_layers=layers, num_attention_heads=heads,
                       num_key_value_heads=heads // 2, tie_word_embeddings=False,
                       max_position_embeddings=2048)


def save_components(resident: ResidentComponents, folder: Path) -> list[Path]:
    """Write each row of the resident matrix as a checkpoint folder (for mergekit to read)."""
    paths = []
    proxy = resident.new_proxy()
    for i in range(resident.k):
        w = [1.0 if j == i else 0.0 for j in range(resident.k)]
        resident.merge_into(proxy, w)
        out = folder / f"c{i + 1}"
        proxy.model.save_pretrained(str(out), safe_serialization=True)
        paths.append(out)
    return paths


def mergekit_time(paths: list[Path], weights: list[float], dtype: str, folder: Path, repeats: int) -> float:
    """Median wall time of mergekit's Python API merging ``paths`` disk to disk (import excluded)."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    cfg = MergeConfiguration.model_validate({
        "merge_method": "linear", "dtype": dtype, "parameters": {"normalize": True},
        "models": [{"model": str(p), "parameters": {"weight": w}} for p, w in zip(paths, weights)],
    })
    options = MergeOptions(cuda=False, copy_tokenizer=False, write_model_card=False, quiet=True,
                           lazy_unpickle=False)
    times = []
    for r in range(repeats):
        out = folder / f"mergekit-out-{r}"
        start = time.perf_counter()
        run_merge(cfg, str(out), options=options)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_size(params: float, k: int, device: torch.device, dtype: torch.dtype, repeats: int,
             with_mergekit: bool) -> None:
    config = config_for(params)
    resident = ResidentComponents.synthetic(config, k, device=device, dtype=dtype, seed=0)
    n, bytes_per = resident.numel, torch.tensor([], dtype=dtype).element_size()
    proxy = resident.new_proxy()
    weights = [1.0 / k] * k
    t_ours = median_time(lambda: resident.merge_into(proxy, weights), repeats, device)
    eff = (k + 1) * n * bytes_per / t_ours
    print(f"\n== {n / 1e6:.1f}M params x K={k}, {str(dtype).replace('torch.', '')}, {device} ==")
    print(f"ours (in place, linear):   {t_ours * 1e3:9.1f} ms   effective {eff / 1e9:6.1f} GB/s "
          f"(median of {repeats})")
    if not with_mergekit:
        print("mergekit:                 skipped (--no-mergekit)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        paths = save_components(resident, Path(tmp))
        name = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
        t_mk = mergekit_time(paths, weights, name, Path(tmp), repeats=3)
    print(f"mergekit run_merge (disk to disk): {t_mk * 1e3:9.1f} ms   (median of 3, import excluded)")
    print(f"ratio mergekit / ours:     {t_mk / t_ours:9.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, nargs="*", default=[25e6, 100e6],
                        help="model sizes in parameters (default: 25e6 100e6)")
    parser.add_argument("--k", type=int, default=4, help="number of components (default 4)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats of our merge")
    parser.add_argument("--no-mergekit", action="store_true",
                        help="skip mergekit (default: skipped automatically above 5e8 params)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    dtype = DTYPES[args.dtype]
    threads = torch.get_num_threads()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} ({threads} threads)"
          + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    bw = copy_bandwidth(device, dtype)
    print(f"copy bandwidth ({device}): {bw / 2e9:.1f} GB/s copied = {bw / 1e9:.1f} GB/s read+write "
          "(our effective figure counts read+write bytes too)")
    for p in args.params:
        run_size(p, args.k, device, dtype, args.repeats, with_mergekit=not args.no_mergekit and p <= 5e8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
