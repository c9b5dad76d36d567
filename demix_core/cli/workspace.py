"""``demix demo`` (build the demo workspace) and ``demix workspace`` (check and show a workspace)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the workspace commands."""
    d = sub.add_parser("demo", help="build the demo workspace from real data (idempotent)")
    d.add_argument("--workspace", default="workspace/demo", help="folder (default workspace/demo)")
    d.add_argument("--quick", action="store_true", help="tiny sizes (< 1 minute)")
    d.add_argument("--references", type=int, default=0, metavar="N",
                   help="also train N reference models on sampled mixtures and their trained proxies")
    d.set_defaults(func=run_demo)

    w = sub.add_parser("workspace", help="check a workspace's manifest and show what it holds")
    w.add_argument("--workspace", required=True, help="workspace folder")
    w.add_argument("--json", action="store_true", help="print the manifest as JSON")
    w.set_defaults(func=run_show)


def run_demo(args: argparse.Namespace) -> int:
    """Build the demo workspace."""
    from demix_core.demo import build_demo  # trains models: loads torch

    build_demo(args.workspace, quick=args.quick, references=args.references)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Load (so check) the manifest and print its components, datasets, suite, storage and study defaults."""
    from demix_core.workspace import load_workspace  # numpy

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
