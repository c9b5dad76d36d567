"""Per-mixture time of the output-ensemble proxy (cached log-probs) beside the merge proxy's, per suite.

For each suite (quick, paper): the merge proxy's time per mixture (merge in place + score, the Engine's
path, median of --repeats fresh evaluations); the ensemble's cache build (one pass per component), its
reload from disk, and its time per mixture (median over --mixtures Dirichlet mixtures); and the largest
difference between the cached scores and the ensemble module run through the suite, on one mixture.
The cache goes to a temporary folder (the workspace is only read).

    python benchmarks/bench_ensemble.py [--workspace workspace/demo] [--suites quick,paper] [--limit 100]
        [--mixtures 200] [--repeats 3] [--threads N] [--skip-exact]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from demix_core.engine import Engine  # noqa: E402
from demix_core.evaluate.ensemble_scorer import EnsembleScorer  # noqa: E402
from demix_core.io.checkpoints import build_model, open_checkpoint  # noqa: E402
from demix_core.workspace.manifest import load_workspace  # noqa: E402


def ms(seconds: float) -> str:
    """Seconds as milliseconds, 2 decimals."""
    return f"{seconds * 1e3:.2f} ms"


def bench_suite(ws_dir: str, suite: str, args: argparse.Namespace, cache_dir: str) -> None:
    """Print one suite's figures."""
    ws = load_workspace(ws_dir)
    engine = Engine(ws, suite=suite, device="cpu", limit=args.limit if suite == "paper" else None)
    k = len(engine.names)
    rng = np.random.default_rng(0)
    mixtures = [tuple(float(x) for x in rng.dirichlet(np.ones(k))) for _ in range(args.mixtures)]
    mixtures = [tuple(x / sum(m) for x in m) for m in mixtures]
    merge = engine.timed(list(mixtures[0]), repeats=args.repeats)
    print(f"[{suite}] merge proxy: {ms(statistics.median(merge))} per mixture (merge + score, median of "
          f"{args.repeats})")

    paths, names = ws.component_paths(), list(ws.component_names)
    start = time.perf_counter()
    built = EnsembleScorer.build(engine.suite, paths, names=names, cache_dir=cache_dir, device="cpu")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    warm = EnsembleScorer.build(engine.suite, paths, names=names, cache_dir=cache_dir, device="cpu")
    reload = time.perf_counter() - start
    if set(warm.provenance.source.values()) != {"disk"}:
        print(f"[{suite}] warning: the reload did not come from disk: {warm.provenance.source}")
    passes = sum(v == "computed" for v in built.provenance.source.values())
    print(f"[{suite}] ensemble cache: {warm.logprobs.shape[1]:,} scored tokens x {k} components; built in "
          f"{cold:.2f} s ({passes} component passes), reloaded from disk in {reload:.3f} s")

    times = []
    for m in mixtures:
        start = time.perf_counter()
        warm.score(m)
        times.append(time.perf_counter() - start)
    print(f"[{suite}] ensemble proxy: {ms(statistics.median(times))} per mixture (median of {len(times)}; "
          f"p90 {ms(float(np.percentile(times, 90)))}); speed-up over merge "
          f"{statistics.median(merge) / statistics.median(times):.0f}x")
    if warm.unavailable:
        print(f"[{suite}] left out of cached scores (greedy decoding): {', '.join(warm.unavailable)}")

    if args.skip_exact:
        return
    models = [build_model(open_checkpoint(p)) for p in paths]
    exact = EnsembleScorer(engine.suite, warm.logprobs, names, models=models).exact(mixtures[1])
    cached = warm.score(mixtures[1])
    diff = max(abs(cached.benchmarks[key] - exact.benchmarks[key]) for key in cached.benchmarks)
    print(f"[{suite}] cached vs ensemble module through the suite: max |difference| {diff:.2e} over "
          f"{len(cached.benchmarks)} metrics")


def main() -> None:
    """Parse arguments and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--suites", default="quick,paper")
    p.add_argument("--limit", type=int, default=100, help="documents per benchmark in the paper suite")
    p.add_argument("--mixtures", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--skip-exact", action="store_true",
                   help="skip the check against the ensemble module (K full passes: ~17 min for paper on 2 busy cores)")
    args = p.parse_args()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" per checkpoint
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="demix-ens-") as cache_dir:
        for suite in args.suites.split(","):
            bench_suite(args.workspace, suite, args, cache_dir)


if __name__ == "__main__":
    main()
