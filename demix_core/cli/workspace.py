"""``demix demo`` (build the demo workspace), ``demix workspace`` (check and show a workspace) and
``demix workspace train-reference`` (train a mixture as a reference)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from demix_core.cli.common import positive_int
from demix_core.errors import ConfigError


def register(sub: Any) -> None:
    """Add the workspace commands."""
    d = sub.add_parser("demo", help="build the demo workspace from real data (idempotent)")
    d.add_argument("--workspace", default="workspace/demo", help="folder (default workspace/demo)")
    d.add_argument("--quick", action="store_true", help="tiny sizes (< 1 minute)")
    d.add_argument("--references", type=int, default=0, metavar="N",
                   help="also train N reference models on sampled mixtures and their trained proxies")
    d.set_defaults(func=run_demo)

    w = sub.add_parser("workspace", help="check a workspace's manifest and show what it holds; train-reference")
    w.add_argument("--workspace", default=None, help="workspace folder (required to show it)")
    w.add_argument("--json", action="store_true", help="print the manifest as JSON")
    w.set_defaults(func=run_show)
    wsub = w.add_subparsers(dest="workspace_command", metavar="ACTION")
    t = wsub.add_parser("train-reference", help="train a mixture with the workspace's reference recipe (resumable) "
                        "and add it to its references")
    t.add_argument("folder", metavar="DIR", help="workspace folder")
    t.add_argument("--mixture", required=True, help="name=weight,... over the components")
    t.add_argument("--name", default=None, help="the reference's name (default: mix-<hash of the mixture>)")
    t.add_argument("--steps", type=positive_int, default=None, help="optimizer steps (default: the recipe's)")
    t.add_argument("--batch", type=positive_int, default=None, help="sequences per step (default: the recipe's)")
    t.add_argument("--seq-len", type=positive_int, default=None, help="tokens per sequence (default: the recipe's)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    t.add_argument("--share", type=float, default=None,
                   help="fraction of sequences from the mixture's datasets, the rest general (default: the recipe's)")
    t.set_defaults(func=run_train_reference)


def run_demo(args: argparse.Namespace) -> int:
    """Build the demo workspace."""
    from demix_core.demo import build_demo  # trains models: loads torch

    build_demo(args.workspace, quick=args.quick, references=args.references)
    return 0


def run_train_reference(args: argparse.Namespace) -> int:
    """Train a mixture as a reference of the workspace."""
    from demix_core.references import train_workspace_reference  # trains: loads torch
    from demix_core.workspace import load_workspace

    ws = load_workspace(args.folder)
    entry = train_workspace_reference(ws, args.mixture, name=args.name, steps=args.steps, batch=args.batch,
                                      seq_len=args.seq_len, lr=args.lr, share=args.share,
                                      log=lambda s: print(s, flush=True))
    print(f"reference {entry.name} added to {ws.root / 'demix.yaml'} ({len(ws.references)} references)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Load (so check) the manifest and print its components, datasets, suite, storage and study defaults."""
    from demix_core.workspace import load_workspace  # numpy

    if not args.workspace:
        raise ConfigError("give --workspace DIR to show a workspace, or an action such as train-reference")
    ws = load_workspace(args.workspace)
    if args.json:
        print(json.dumps({"root": str(ws.root), **ws.to_dict()}, indent=2))
        return 0
    print(f"workspace {ws.name} at {ws.root}: suite {ws.suite}, storage {ws.storage_url()}")
    for c in ws.components:
        print(f"  component {c.name:<12} domain {c.domain:<10} {c.tokens:>12,} tokens  {c.path}")
    for d in ws.datasets:
        print(f"  dataset   {d.name:<12} domain {d.domain:<10} {d.tokens:>12,} tokens  {d.heldout}")
    print(f"  {len(ws.references)} reference model(s); base {ws.base or 'none'}")
    print("new studies: " + ", ".join(f"{k} {ws.study_default(k)}" for k in ("sampler", "method", "seed")))
    return 0
