"""Evaluation speed and exactness on a workspace (default: the demo; ``--tiny`` builds a small one).

Prints, in one run, for one merged proxy and the paper suite (the nine benchmarks, --limit docs each):
our per-proxy time (merge + score, median of --repeats), lm-eval's ``simple_evaluate`` on the same
model and tasks (and the largest metric difference from ours), the raw forward-pass time over the
same tokens (plain ``model(ids).logits``, same batches), and the ratios; then, on the paper and the quick
suite, the output-ensemble proxy's per-mixture time (cached log-probs) beside the merge proxy's, with the
cache's build (from the engine's resident components, and from checkpoints on disk) and its reload from
disk timed separately, in a temporary folder. ``--tables`` adds the
components x domains tables and a walk between two components.

    python benchmarks/bench_eval.py [--workspace workspace/demo | --tiny] [--limit 100] [--repeats 3]
        [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from demix_core.engine import Engine  # noqa: E402
from demix_core.evaluate.benchdata import prepare_benchmarks  # noqa: E402
from demix_core.workspace.manifest import Workspace, load_workspace  # noqa: E402

TEXTS = {
    "prose": ("general", "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
                         "must be in want of a wife. "),
    "code": ("code", "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, i))\n"),
    "math": ("math", "Question: 12 apples and 7 more? Answer: 12 + 7 = 19. So the answer is 19.\n"),
}


def build_tiny_workspace(root: Path) -> Path:
    """Three ~1M-parameter components (hidden 128, 2 layers, byte-level BPE) and a base, in seconds."""
    from demix_core.train.tiny import byte_tokenizer, save_tiny, tiny_config
    from demix_core.workspace.manifest import ComponentEntry, DatasetEntry, Workspace

    tok = byte_tokenizer(vocab=4096)
    cfg = tiny_config(hidden=128, layers=2, vocab=4096, heads=4)
    cfg.max_position_embeddings = 2048
    base = save_tiny(root / "base", seed=0, config=cfg, tokenizer=tok)
    comps, sets = [], []
    for i, (name, (domain, text)) in enumerate(TEXTS.items()):
        save_tiny(root / name, seed=i + 1, base=base, tokenizer=tok, noise=0.02)
        (root / f"{name}.txt").write_text(text * 400)
        comps.append(ComponentEntry(name=name, path=name, domain=domain, dataset=name))
        sets.append(DatasetEntry(name=name, domain=domain, train=f"{name}.txt", heldout=f"{name}.txt"))
    Workspace(root=root, name="tiny", components=comps, base="base", datasets=sets).save()
    return root


def ensemble_times(ws: Workspace, device: str, suite: str, *, limit: int | None = None, repeats: int = 50,
                   merge_ms: float | None = None) -> None:
    """Print the ensemble proxy's cache build (from the engine's resident components, and from the checkpoints on
    disk as a cold scorer does), its reload from disk, and its per-mixture time beside the merge proxy's."""
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer

    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="demix-ens-cache-") as cache:
        timings = []
        for _ in range(2):  # first: every component's log-probs computed and saved; second: read from disk
            engine = Engine(ws, suite=suite, device=device, limit=limit, proxy="ensemble", ensemble_cache=cache)
            start = time.perf_counter()
            engine.kind().prepare()
            timings.append(time.perf_counter() - start)
        start = time.perf_counter()  # the same passes with each component loaded from its checkpoint
        EnsembleScorer.build(engine.suite, ws.component_paths(), names=engine.names, device=engine.device)
        from_disk = time.perf_counter() - start
        k = len(engine.names)
        mixes = [[rng.random() for _ in range(k)] for _ in range(repeats)]
        mixes = [[w / sum(m) for w in m] for m in mixes]
        engine.evaluate(mixes[0], fresh=True)  # warm-up
        per = []
        for m in mixes:
            start = time.perf_counter()
            engine.evaluate(m, fresh=True)
            per.append(time.perf_counter() - start)
    target = 5 if suite == "quick" else 50
    beside = f"; merge proxy {merge_ms:.0f} ms -> {merge_ms / (statistics.median(per) * 1e3):.0f}x" if merge_ms else ""
    print(f"{suite} suite, ensemble proxy: cache built in {timings[0]:.2f} s from the engine's resident components "
          f"({from_disk:.2f} s loading each component from disk instead; {k} component passes), reloaded from "
          f"disk in {timings[1]:.2f} s; per mixture (cached log-probs): median {statistics.median(per) * 1e3:.2f} ms, "
          f"max {max(per) * 1e3:.2f} ms over {repeats} random mixtures (target <= {target} ms){beside}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--tiny", action="store_true",
                   help="build and use a tiny workspace (also used when --workspace is missing)")
    p.add_argument("--limit", type=int, default=100, help="documents per benchmark")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-simple-evaluate", action="store_true")
    p.add_argument("--tables", action="store_true", help="also print components x domains tables")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    prepare_benchmarks(log=lambda s: None)
    tmp = None
    if args.tiny or not (Path(args.workspace) / "demix.yaml").exists():
        tmp = tempfile.TemporaryDirectory(prefix="demix-bench-")
        args.workspace = str(build_tiny_workspace(Path(tmp.name) / "ws"))
        print(f"tiny workspace built in {args.workspace}")
    ws = load_workspace(args.workspace)
    k = len(ws.components)
    mixture = [1.0 / k] * k

    t0 = time.perf_counter()
    paper = Engine(ws, suite="paper", device=args.device, limit=args.limit)
    setup = time.perf_counter() - t0
    scorer = paper.suite.scorer  # type: ignore[union-attr]
    model = paper.proxy.model
    params = sum(p.numel() for p in model.parameters())
    print(f"workspace {ws.name}: {k} components of {params / 1e6:.2f}M parameters, {torch.get_num_threads()} threads")
    print(f"paper suite: {len(scorer.tasks)} benchmarks x {args.limit} docs -> {scorer.requests} forward rows, "
          f"{scorer.tokens_unshared:,} tokens ({scorer.tokens:,} computed: {len(scorer.groups)} shared few-shot "
          f"prefixes run once), {len(scorer.batches) + sum(len(g.batches) for g in scorer.groups)} length-sorted "
          f"batches; built once in {setup:.1f}s")
    paper.evaluate(mixture)  # warm-up
    ours = statistics.median(paper.timed(mixture, args.repeats))
    raw = scorer.forward_only_seconds(model, repeats=args.repeats)
    print(f"  ours, per proxy (merge + score):  {ours:7.2f} s   (median of {args.repeats})")
    print(f"  raw forward passes, same tokens:  {raw:7.2f} s   -> ours / raw = {ours / raw:.2f}x  (target <= 1.3x)")
    if not args.skip_simple_evaluate:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        from demix_core.evaluate.lmeval import task_manager

        manager = task_manager()
        times = []
        for _ in range(max(1, args.repeats - 1)):
            lm = HFLM(pretrained=model, tokenizer=paper.tokenizer, batch_size=32)
            start = time.perf_counter()
            res = simple_evaluate(model=lm, tasks=list(scorer.tasks), task_manager=manager, limit=args.limit,
                                  bootstrap_iters=0, verbosity="ERROR")
            times.append(time.perf_counter() - start)
        se = statistics.median(times)
        ours_now = scorer.score(model)
        diffs = {(t, m): abs(res["results"][t][f"{m},none"] - v) for t, ms in ours_now.items() for m, v in ms.items()}
        cont = max(d for (t, m), d in diffs.items() if not m.startswith("acc"))
        flips = {f"{t.removeprefix('demix_')}/{m}": round(d * args.limit) for (t, m), d in diffs.items()
                 if m.startswith("acc") and d > 1e-9}
        print(f"  lm_eval.simple_evaluate:          {se:7.2f} s   -> simple_evaluate / ours = {se / ours:.2f}x "
              f"(target >= 3x)")
        print(f"  agreement with simple_evaluate: largest bits-per-byte difference {cont:.1e}; accuracy: "
              + (", ".join(f"{k} differs by {n} of {args.limit} docs" for k, n in flips.items()) if flips else
                 "identical")
              + (" (choices with log-likelihoods equal to float32 precision can go either way)" if flips else ""))
    s = paper.evaluate(mixture).scores
    print("  scores: " + "  ".join(f"{key}={v:.3f}" for key, v in sorted(s.benchmarks.items())))
    ensemble_times(ws, args.device, "paper", limit=args.limit, repeats=20, merge_ms=ours * 1e3)

    quick = Engine(ws, suite="quick", device=args.device)
    quick.evaluate(mixture)
    qt = quick.timed(mixture, 10)
    tokens = sum(h.tokens for h in quick.suite.scorer.sets.values())  # type: ignore[union-attr]
    print(f"quick suite ({len(ws.datasets)} held-out sets, {tokens:,} tokens) per proxy (merge + score): "
          f"median {statistics.median(qt) * 1e3:.0f} ms, max {max(qt) * 1e3:.0f} ms over 10 (target <= 500 ms)")
    ensemble_times(ws, args.device, quick.suite.name, merge_ms=statistics.median(qt) * 1e3)

    if args.tables:
        import pandas as pd

        pd.set_option("display.width", 200)
        for engine, what, title in ((paper, "domains", "paper suite domains (higher is better: -bpb)"),
                                    (quick, "benchmarks", "quick suite held-out bits per byte")):
            rows = {}
            for i, name in enumerate(engine.names):
                sc = engine.evaluate([1.0 if j == i else 0.0 for j in range(k)]).scores
                rows[name] = sc.domains if what == "domains" else sc.benchmarks
            print(f"\ncomponents x {title}:")
            print(pd.DataFrame.from_dict(rows, orient="index").to_string(float_format=lambda v: f"{v:.3f}"))
        a, b = quick.names[0], quick.names[1]
        walk = {}
        for t in (0.0, 0.25, 0.5, 0.75, 1.0):
            weights = [0.0] * k
            weights[0], weights[1] = 1 - t, t
            walk[f"{a} {1 - t:.2f} / {b} {t:.2f}"] = quick.evaluate(weights).scores.domains
        print(f"\nwalk from {a} to {b} (quick suite domain scores, higher is better: -bpb):")
        print(pd.DataFrame.from_dict(walk, orient="index").to_string(float_format=lambda v: f"{v:.3f}"))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
