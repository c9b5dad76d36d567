"""Your own components at real size: K perturbations of one Llama-style base, bf16, sharded, through the real path.

Writes K components of a ~``--params`` Llama-style model (bf16 sharded safetensors with an index, perturbations
of one base, plus one held-out file each in .txt / .jsonl.gz / .parquet) and times, in one run:

- ``demix init`` (open, compatibility report, held-out checks, manifest written);
- load: seconds, and peak RSS of this process beside (K+1) x N x 2 bytes (the components and one proxy);
- merge into the live proxy: ms and effective GB/s ((K+1) x N x 2 bytes moved) beside the machine's copy
  bandwidth measured in the same run, interleaved with the merges;
- quick-suite scoring: tokens/s and seconds per proxy beside raw forward passes over the same tokens;
- 10 study trials through a real worker process (trials/min from the storage's trial times);
- export (`demix merge`'s path): seconds.

    python benchmarks/bench_scale.py                                   # 150M params, K=7, CPU, ~2.1 GB in /tmp
    python benchmarks/bench_scale.py --params 1.7e9 --k 7 --device cuda   # the paper's scale on a GPU

On a GPU the paper suite is scored too (when `demix data benchmarks` has been run) and proxies per GPU-hour
are printed. The files are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parent.parent
GB = 1e9
WORDS = ("the of and to in is was for on with as by at from that this are be it an or which data model train def "
         "return if else for while import class self print len range list dict 0 1 2 3 4 5 6 7 8 9 + - * / =").split()
FORMATS = (".txt", ".jsonl.gz", ".parquet")


def llama_shape(params: float) -> dict[str, int | bool]:
    """A Llama-style config with about ``params`` parameters: the width of a real model of that size, the layer
    count chosen to reach the target (1B and up: SmolLM2-1.7B's width, tied; below: 768 wide, untied)."""
    if params >= 1e9:
        shape = {"hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 8,
                 "vocab_size": 49152, "tie_word_embeddings": True}
    else:
        shape = {"hidden_size": 768, "intermediate_size": 2048, "num_attention_heads": 12, "num_key_value_heads": 4,
                 "vocab_size": 32000, "tie_word_embeddings": False}
    h, i, v = int(shape["hidden_size"]), int(shape["intermediate_size"]), int(shape["vocab_size"])
    kv = h // int(shape["num_attention_heads"]) * int(shape["num_key_value_heads"])
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    embeddings = v * h * (1 if shape["tie_word_embeddings"] else 2)
    shape["num_hidden_layers"] = max(1, round((params - embeddings) / per_layer))
    return shape


def write_components(folder: Path, params: float, k: int, heldout_tokens: int) -> None:
    """The base's K perturbations (bf16, sharded), a tokenizer, and one held-out file per component."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    from transformers.initialization import no_init_weights

    from demix_core.train.tiny import byte_tokenizer

    config = LlamaConfig(**llama_shape(params), max_position_embeddings=2048)
    tokenizer = byte_tokenizer()
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    gen = torch.Generator().manual_seed(0)
    base = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            base[name] = (torch.randn(p.shape, generator=gen) * 0.02).to(torch.bfloat16) if p.dim() > 1 else \
                torch.ones(p.shape, dtype=torch.bfloat16)
    shard = "200MB" if params < 1e9 else "2GB"
    for c in range(k):
        with torch.no_grad():
            for name, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=gen) * 0.002
                p.copy_(base[name].float() + noise)
        out = folder / f"c{c + 1}"
        model.save_pretrained(str(out), max_shard_size=shard)
        tokenizer.save_pretrained(str(out))
        write_heldout(folder / "heldout" / f"c{c + 1}{FORMATS[c % 3]}", seed=c, chars=heldout_tokens * 8)


def write_heldout(path: Path, *, seed: int, chars: int) -> None:
    r = random.Random(seed)
    docs, size = [], 0
    while size < chars:
        doc = " ".join(r.choice(WORDS) for _ in range(200))
        docs.append(doc)
        size += len(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": docs}), path)
    else:
        path.write_text("\n\n".join(docs), encoding="utf-8")


def peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sync(device) -> None:  # noqa: ANN001 - torch.device
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:  # noqa: ANN001
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def uptime() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", type=float, default=1.5e8, help="parameters per component (default 1.5e8)")
    p.add_argument("--k", type=int, default=7, help="components (default 7)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--dir", default="/tmp/demix-bench-scale", help="where the components are written")
    p.add_argument("--heldout-tokens", type=int, default=None,
                   help="quick suite tokens per held-out file (default 256 on CPU, 16384 on a GPU)")
    p.add_argument("--trials", type=int, default=10, help="study trials (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="timed merges / scorings (median)")
    p.add_argument("--keep", action="store_true", help="keep the files")
    p.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)  # the writer child process
    return p.parse_args()


def main() -> int:
    args = parse()
    from demix_core.errors import DemixError

    try:
        return run(args)
    except DemixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one benchmark read top to bottom
    from demix_core.errors import ConfigError
    from demix_core.merge import resolve_device

    device = resolve_device(args.device)  # a one-line error when CUDA is asked for and absent
    heldout_tokens = args.heldout_tokens or (16_384 if device.type == "cuda" else 256)
    folder = Path(args.dir)
    if args.write_only:
        write_components(folder, args.params, args.k, heldout_tokens)
        return 0
    shape = llama_shape(args.params)
    need = args.k * args.params * 2 * 1.05
    free = shutil.disk_usage(folder.parent if not folder.exists() else folder).free
    if need > free:
        raise ConfigError(f"{folder} needs ~{need / GB:.1f} GB for {args.k} components and has {free / GB:.1f} GB "
                          "free; pass --dir on a larger disk")
    print(f"load average {uptime()}; {os.cpu_count()} cores; device {device}")
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--write-only", "--dir", str(folder), "--params", str(args.params),
                    "--k", str(args.k), "--heldout-tokens", str(heldout_tokens)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    disk = sum(f.stat().st_size for f in folder.rglob("*.safetensors"))
    print(f"wrote {args.k} components ({shape}) in {time.perf_counter() - start:.0f}s: {disk / GB:.2f} GB on disk")
    try:
        return measure(args, device, folder, heldout_tokens)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"deleted {folder}")


def measure(args: argparse.Namespace, device, folder: Path, heldout_tokens: int) -> int:  # noqa: ANN001, PLR0915
    import torch

    from demix_core.cli import main as demix
    from demix_core.engine import Engine
    from demix_core.export.merged import export_merged
    from demix_core.workspace.manifest import load_workspace

    k = args.k
    comps = [folder / f"c{i + 1}" for i in range(k)]
    held = sorted((folder / "heldout").iterdir(), key=lambda p: int(p.name[1:].split(".")[0]))
    ws_dir = folder / "ws"
    t = time.perf_counter()
    code = demix(["init", str(ws_dir), "--components", ",".join(map(str, comps)), "--heldout",
                  ",".join(map(str, held)), "--heldout-tokens", str(heldout_tokens)])
    if code:
        return code
    print(f"demix init: {time.perf_counter() - t:.2f}s")

    ws = load_workspace(ws_dir)
    rss_before = peak_rss()
    t = time.perf_counter()
    engine = Engine(ws, suite="quick", device=str(device), recent=0, log=print)
    load_s = time.perf_counter() - t
    n = engine.resident.numel
    budget = (k + 1) * n * 2
    rss = peak_rss()
    print(f"load (components + proxy + quick suite): {load_s:.1f}s; N = {n:,} parameters")
    print(f"peak RSS {rss / GB:.2f} GB (before loading {rss_before / GB:.2f} GB) vs (K+1) x N x 2 = "
          f"{budget / GB:.2f} GB -> {rss / budget:.2f}x; bound 1.3 x (K+1)xNx2 + one proxy = "
          f"{(1.3 * budget + n * 2) / GB:.2f} GB")

    # Merge vs copy, interleaved so both see the same load.
    proxy, res = engine.proxy, engine.resident
    buffers = [torch.empty(n, dtype=res.dtype, device=device).fill_(1), torch.empty(n, dtype=res.dtype, device=device)]
    rng = random.Random(0)
    merges, copies = [], []
    res.merge_into(proxy, [1.0 / k] * k)  # warm-up (compiles the kernel once per machine)
    buffers[1].copy_(buffers[0])
    for _ in range(args.repeats):
        w = [rng.random() for _ in range(k)]
        merges.append(timed(lambda w=w: res.merge_into(proxy, w), device))
        copies.append(timed(lambda: buffers[1].copy_(buffers[0]), device))
    buffers.clear()
    merge_s, copy_s = statistics.median(merges), statistics.median(copies)
    merge_bw, copy_bw = budget / merge_s / GB, 2 * n * 2 / copy_s / GB
    print(f"merge: {merge_s * 1e3:.0f} ms median of {args.repeats} -> {merge_bw:.1f} GB/s effective; copy bandwidth "
          f"{copy_bw:.1f} GB/s (same run) -> {merge_bw / copy_bw:.0%} of copy")

    # Quick suite vs raw forward passes over the same windows.
    suite = engine.suite
    sets = suite.scorer.sets  # type: ignore[union-attr]
    tokens = sum(hs.tokens for hs in sets.values())

    def raw() -> None:
        with torch.no_grad():
            for hs in sets.values():
                for s in range(0, len(hs.windows), suite.scorer.batch):  # type: ignore[union-attr]
                    proxy.model(input_ids=hs.windows[s: s + suite.scorer.batch, :-1].to(device), use_cache=False)

    suite.score(proxy.model)  # warm-up: the first forward pass sets up kernels and memory
    raw()
    scores, forwards = [], []
    for _ in range(3):
        scores.append(timed(lambda: suite.score(proxy.model), device))
        forwards.append(timed(raw, device))
    score_s, raw_s = statistics.median(scores), statistics.median(forwards)
    print(f"quick suite ({len(sets)} files x {heldout_tokens:,} tokens = {tokens:,}): {score_s:.2f}s per proxy "
          "(median of 3), "
          f"{tokens / score_s:,.0f} tokens/s; raw forward {raw_s:.2f}s ({tokens / raw_s:,.0f} tokens/s) -> "
          f"{score_s / raw_s:.2f}x raw")
    if device.type == "cuda":
        paper_suite(engine, device)

    # Study trials through a real worker process (the path `demix study run` takes).
    t = time.perf_counter()
    for argv in (["study", "create", "--workspace", str(ws_dir), "--study", "scale", "--sampler", "random"],
                 ["worker", "--workspace", str(ws_dir), "--study", "scale", "--n-trials", str(args.trials),
                  "--device", str(device)]):
        proc = subprocess.run([sys.executable, "-m", "demix_core", *argv], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode:
            print(proc.stderr.strip(), file=sys.stderr)
            return proc.returncode
    wall = time.perf_counter() - t
    from demix_core.search.study import load_study

    trials = [tr for tr in load_study(ws, "scale").trials if tr.state.name == "COMPLETE"]
    busy = sum((tr.datetime_complete - tr.datetime_start).total_seconds() for tr in trials)  # type: ignore[operator]
    print(f"{len(trials)} study trials: {60 * len(trials) / busy:.1f} trials/min in the worker "
          f"({busy / len(trials):.2f}s each); {wall:.0f}s wall with the worker's start and load")

    t = time.perf_counter()
    export_merged(res, res.mixture([1.0 / k] * k), folder / "export", force=True)
    print(f"export (demix merge's path): {time.perf_counter() - t:.1f}s")
    return 0


def paper_suite(engine, device) -> None:  # noqa: ANN001
    """On a GPU: the paper suite's seconds per proxy and proxies per GPU-hour (merge + score)."""
    from demix_core.errors import DemixError
    from demix_core.evaluate.benchdata import SETUP_COMMAND, missing_benchmarks
    from demix_core.evaluate.suite import build_suite

    if missing_benchmarks():
        print(f"paper suite: benchmarks not converted here; run `{SETUP_COMMAND}` once for proxies per GPU-hour")
        return
    try:
        suite = build_suite("paper", model=engine.proxy.model, tokenizer=engine.tokenizer)
    except DemixError as exc:
        print(f"paper suite: {exc}")
        return
    res, proxy = engine.resident, engine.proxy
    times = []
    for i in range(3):
        w = [1.0 + i * (j % 3) for j in range(res.k)]
        times.append(timed(lambda w=w: (res.merge_into(proxy, w), suite.score(proxy.model)), device))
    per = statistics.median(times)
    print(f"paper suite: {per:.1f}s per proxy (merge + score) -> {3600 / per:.0f} proxies per GPU-hour")


if __name__ == "__main__":
    raise SystemExit(main())
