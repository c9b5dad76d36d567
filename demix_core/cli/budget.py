"""``demix budget`` (a workspace's token budget: show, set, measure) and ``demix export-mixture``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from demix_core.cli.common import positive_int
from demix_core.errors import ConfigError
from demix_core.io.atomic import check_file_output
from demix_core.mixing.numbers import readable
from demix_core.mixing.pairs import parse_named, parse_pairs, split_items
from demix_core.workspace.budget import DEFAULT_EPOCHS_NOTE, DEFAULT_MAX_EPOCHS, Budget

FORMATS = ("olmo-core", "megatron", "nanotron", "streaming", "demix")  # demix_core.export.frameworks.FORMATS
EPOCHS_HELP = ("most epochs (repetitions) of a dataset: one number for every dataset, none for unlimited, or name=N "
               "pairs (N or none); where the budget states none, 4 (demix_core.workspace.budget.DEFAULT_MAX_EPOCHS)")


def register(sub: Any) -> None:
    """Add the budget and export commands."""
    b = sub.add_parser("budget", help="show or set the workspace's token budget (target tokens, epoch caps, "
                       "min / max weights) that every search and export respects")
    b.add_argument("--workspace", required=True, help="workspace folder")
    b.add_argument("--target-tokens", type=positive_int, default=None, help="training tokens of the run")
    b.add_argument("--max-epochs", default=None, metavar="N | none | name=N,...", help=EPOCHS_HELP)
    b.add_argument("--min-weight", default=None, metavar="name=w,...", help="lowest weight per dataset")
    b.add_argument("--max-weight", default=None, metavar="name=w,...", help="highest weight per dataset")
    b.add_argument("--available", default=None, metavar="name=N,...",
                   help="declared tokens of a dataset (for data tokenized elsewhere); overrides the measured count")
    b.add_argument("--measure", action="store_true",
                   help="tokenize each dataset's train file with the workspace tokenizer and record the counts")
    b.add_argument("--clear", action="store_true", help="remove the budget (before applying the other flags)")
    b.add_argument("--json", action="store_true", help="print the budget and feasible bounds as JSON")
    b.set_defaults(func=run_budget)

    e = sub.add_parser("export-mixture", help="write a mixture as a training framework's data config")
    e.add_argument("--workspace", required=True, help="workspace folder")
    e.add_argument("--mixture", required=True, help="name=weight,... (checked against the budget)")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--target-tokens", type=positive_int, default=None,
                   help="training tokens of the run (default: the budget's)")
    e.add_argument("--max-epochs", default=None, metavar="N | none | name=N,...",
                   help=EPOCHS_HELP + "; for this export only (the budget's are kept)")
    e.add_argument("--out", required=True, help="the file to write")
    e.add_argument("--path", action="append", default=[], metavar="NAME=PATH",
                   help="the path the framework reads for a dataset (its tokenized form); repeatable")
    e.add_argument("--global-batch-size", type=positive_int, default=None,
                   help="olmo-core only: tokens per optimizer step (a multiple of the sequence length)")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.set_defaults(func=run_export_mixture)


def _cap(text: str) -> float:
    """An epoch cap: a number, or ``none`` (unlimited)."""
    return math.inf if text.strip().lower() == "none" else float(text)


def _epochs(text: str) -> tuple[float | None, dict[str, float]]:
    """``4`` or ``none`` (every dataset) or ``a=4,b=none`` (per dataset); ``none`` is unlimited (infinity)."""
    if "=" not in text:
        try:
            return _cap(text), {}
        except ValueError:
            raise ConfigError(f"max epochs {text!r} is not a number; write 4, none (unlimited), or "
                              "name=4,name=none") from None
    return None, parse_named(text, what="max epochs", example="code=4", value=_cap, expected="a number or none")


def _tokens(text: str) -> dict[str, int]:
    pairs = parse_pairs(text, what="available tokens", example="code=1200000")
    bad = [k for k, v in pairs.items() if v <= 0 or v != int(v)]
    if bad:
        raise ConfigError(f"available tokens for {bad[0]!r} is {pairs[bad[0]]:g}; give a whole number > 0")
    return {k: int(v) for k, v in pairs.items()}


def run_budget(args: argparse.Namespace) -> int:
    """Show the budget, or change it (checked: an infeasible budget is not saved) and save it atomically."""
    from demix_core.workspace.feasible import measure_tokens, resolve_bounds, with_changes
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(args.workspace)
    budget = Budget() if args.clear else ws.budget
    changing = args.clear or args.measure or any(v is not None for v in (
        args.target_tokens, args.max_epochs, args.min_weight, args.max_weight, args.available))
    if changing:
        default_epochs, epochs = _epochs(args.max_epochs) if args.max_epochs is not None else (None, {})
        available = measure_tokens(ws) if args.measure else {}
        available.update(_tokens(args.available) if args.available else {})
        budget = with_changes(
            budget, target_tokens=args.target_tokens, max_epochs=default_epochs, epochs=epochs,
            min_weight=parse_pairs(args.min_weight, what="min weight", example="code=0.1") if args.min_weight else None,
            max_weight=parse_pairs(args.max_weight, what="max weight", example="code=0.5") if args.max_weight else None,
            available=available)
    bounds = resolve_bounds(ws, budget=budget)  # BudgetError (nothing saved) when no mixture fits
    if changing:
        ws.budget = budget
        ws.save()
    defaulted = [n for n in ws.component_names if budget.epochs_default(n)]
    if args.json:
        print(json.dumps({"budget": budget.to_dict(), "bounds": bounds.to_json(),
                          "default_max_epochs": DEFAULT_MAX_EPOCHS, "max_epochs_default": defaulted}, indent=2))
        return 0
    what = "saved in" if changing else "of"
    target = f"{budget.target_tokens:,} target tokens" if budget.target_tokens else "no target tokens"
    print(f"budget {what} {ws.root / 'demix.yaml'}: {target}")
    print("epoch caps: " + ", ".join(f"{n} {_cap_text(budget, n)}" for n in ws.component_names))
    if defaulted:
        print(f"  {DEFAULT_EPOCHS_NOTE}; set one with --max-epochs N, or --max-epochs none for unlimited")
    print("feasible weights per dataset:")
    for line in bounds.describe().splitlines():
        print(f"  {line}")
    return 0


def _cap_text(budget: Budget, name: str) -> str:
    cap = budget.epochs_of(name)
    if cap is None:
        return "unlimited"
    return f"{cap:g} (default)" if budget.epochs_default(name) else f"{cap:g}"


def _paths(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--path {item!r} is not NAME=PATH; write it as code=/data/code_tokens")
        out[name.strip()] = path.strip()
    return out


def run_export_mixture(args: argparse.Namespace) -> int:
    """Check the mixture against the budget and write the framework's config."""
    from demix_core.export.frameworks import UNITS, cap_words, export_mixture, repetition_warning
    from demix_core.workspace.feasible import with_changes
    from demix_core.workspace.manifest import load_workspace

    check_file_output(args.out, force=args.force)
    if not any(split_items(args.mixture)):
        raise ConfigError("--mixture is empty; write it as name=weight,name=weight")
    ws = load_workspace(args.workspace)
    mixture = ws.parse_mixture(args.mixture)
    budget = ws.budget
    if args.max_epochs is not None:
        default_epochs, epochs = _epochs(args.max_epochs)
        budget = with_changes(budget, max_epochs=default_epochs, epochs=epochs)
    out, plan = export_mixture(ws, mixture, args.format, args.out, target_tokens=args.target_tokens,
                               paths=_paths(args.path), global_batch_size=args.global_batch_size, force=args.force,
                               budget=budget)
    print(f"wrote {args.format} mixture ({UNITS[args.format]}) for {plan.target_tokens:,} tokens to {out}:")
    for s in plan.sources:
        ep = f"{readable(s.epochs)} epochs" if s.epochs is not None else "epochs unknown"
        print(f"  {s.name:<12} {s.weight:.4f}  {s.tokens:>14,} tokens  {ep} ({cap_words(s)})")
    warning = repetition_warning(plan)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
