"""``demix validate``: rank consistency of merged proxies against reference models."""

from __future__ import annotations

import argparse
import json
from typing import Any

from demix_core.cli.common import positive_int


def register(sub: Any) -> None:
    """Add the validate command."""
    v = sub.add_parser("validate", help="rank consistency of merged proxies against reference models")
    v.add_argument("--workspace", required=True)
    v.add_argument("--suite", default=None, help="quick or paper (default: the workspace's)")
    v.add_argument("--limit", type=positive_int, default=None, help="documents per lm-eval task")
    v.add_argument("--device", default="auto")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Validate proxies against references."""
    from demix_core.validate import validate_workspace  # merges and scores: loads torch
    from demix_core.workspace import load_workspace

    ws = load_workspace(args.workspace)
    report = validate_workspace(ws, suite=args.suite, device=args.device, limit=args.limit,
                                log=(lambda s: None) if args.json else print)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, default=float))
    else:
        print("\n".join(report.lines()))
    return 0
