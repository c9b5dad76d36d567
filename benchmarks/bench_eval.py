"""Evaluation speed and sanity on a workspace (default: the demo).

Prints, in one run, for one merged proxy and the paper suite (the nine benchmarks, --limit docs each):
our per-proxy time (merge + score, median), lm-eval's ``simple_evaluate`` on the same model and tasks,
the raw forward-pass time over the same tokens, and the ratios; the quick suite's per-proxy time; the
components x domains table; and how a proxy's scores move as the weights move.

    python benchmarks/bench_eval.py [--workspace workspace/demo] [--limit 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pandas as pd  # noqa: E402

from demix_core.engine import Engine  # noqa: E402
from demix_core.evaluate.benchdata import prepare_benchmarks  # noqa: E402
from demix_core.workspace import load_workspace  # noqa: E402


def table(engine: Engine, what: str) -> pd.DataFrame:
    """Rows: components (each merged alone, i.e. weight 1) and the base; columns: domains or benchmarks."""
    rows = {}
    for i, name in enumerate(engine.names):
        w = [1.0 if j == i else 0.0 for j in range(len(engine.names))]
        s = engine.evaluate(w).scores
        rows[name] = s.domains if what == "domains" else s.benchmarks
    return pd.DataFrame.from_dict(rows, orient="index")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--limit", type=int, default=100, help="documents per benchmark")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-simple-evaluate", action="store_true")
    args = p.parse_args(argv)
    prepare_benchmarks(log=lambda s: None)
    ws = load_workspace(args.workspace)
    k = len(ws.components)
    mixture = [1.0 / k] * k

    paper = Engine(ws, suite="paper", device="cpu", limit=args.limit)
    scorer = paper.suite.scorer  # type: ignore[union-attr]
    paper.evaluate(mixture)  # warm-up
    ours = statistics.median(paper.timed(mixture, args.repeats))
    raw = scorer.forward_only_seconds(paper.proxy.model, repeats=args.repeats)
    print(f"paper suite: 9 benchmarks x {args.limit} docs, {len(scorer.requests)} requests, "
          f"{scorer.tokens:,} tokens, {len(scorer.batches)} length-sorted batches")
    print(f"  ours, per proxy (merge + score):  {ours:7.2f} s   (median of {args.repeats})")
    print(f"  raw forward passes, same tokens:  {raw:7.2f} s   -> ours / raw = {ours / raw:.2f}x")
    if not args.skip_simple_evaluate:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        from demix_core.evaluate.lmeval import task_manager

        names = list(scorer.tasks)
        manager = task_manager()
        times = []
        for _ in range(max(1, args.repeats - 1)):
            lm = HFLM(pretrained=paper.proxy.model, tokenizer=paper.tokenizer, batch_size=32)
            t0 = time.perf_counter()
            res = simple_evaluate(model=lm, tasks=names, task_manager=manager, limit=args.limit,
                                  log_samples=False, verbosity="ERROR")
            times.append(time.perf_counter() - t0)
        se = statistics.median(times)
        ours_now = scorer.score(paper.proxy.model)
        diff = max(abs(res["results"][t][f"{m},none"] - v) for t, ms in ours_now.items() for m, v in ms.items())
        print(f"  lm_eval.simple_evaluate:          {se:7.2f} s   -> simple_evaluate / ours = {se / ours:.1f}x "
              f"(largest metric difference {diff:.2e})")

    quick = Engine(ws, suite="quick", device="cpu")
    quick.evaluate(mixture)
    qt = quick.timed(mixture, 10)
    print(f"quick suite per proxy (merge + score): median {statistics.median(qt) * 1e3:.0f} ms, "
          f"max {max(qt) * 1e3:.0f} ms over 10")

    pd.set_option("display.width", 200)
    print("\ncomponents x domains, paper suite (higher is better: -bpb):")
    print(table(paper, "domains").to_string(float_format=lambda v: f"{v:.3f}"))
    print("\ncomponents x held-out datasets, quick suite (bits per byte, lower is better):")
    print(table(quick, "benchmarks").to_string(float_format=lambda v: f"{v:.3f}"))

    names = list(quick.names)
    a, b = names[0], names[1] if len(names) > 1 else names[0]
    print(f"\nproxies moving between {a} and {b} (quick suite, bpb):")
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        mix = {n: 0.0 for n in names}
        mix[a], mix[b] = 1 - w, w
        s = quick.evaluate(mix).scores
        print(f"  {a}={1 - w:.2f} {b}={w:.2f}: " + "  ".join(f"{k}={v:.3f}" for k, v in s.benchmarks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
