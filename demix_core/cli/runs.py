"""``demix import-runs``: a table of past mixture runs becomes a study of a table workspace (or its references)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from demix_core.mixing.pairs import split_items

# demix_core.runs loads Optuna, numpy and the workspace: imported inside the command, so `demix --help` stays fast.


def register(sub: Any) -> None:
    """Add the import-runs command."""
    p = sub.add_parser("import-runs", help="import a table of past mixture runs (RegMix, Olmix or plain CSV) as a "
                       "study of a table workspace, or as its references")
    p.add_argument("--workspace", required=True, help="the table workspace's folder (made when it has no demix.yaml)")
    p.add_argument("--study", default=None, help="the study to add the runs to (made when it does not exist)")
    p.add_argument("--mixtures", required=True, help="CSV: a key column and one weight column per domain")
    p.add_argument("--scores", default=None, help="CSV: the same key column and one column per metric (leave it "
                   "out when --mixtures holds the scores too, named by --objectives)")
    p.add_argument("--key", default=None, help="the column joining the files (default: run, run_id or index)")
    p.add_argument("--objectives", default=None, help="metrics the study optimises, a,b,... or family=m1+m2,... "
                   "(a family is the mean of its metrics); default: every metric when there are at most 8")
    p.add_argument("--higher-is-better", default="", help="metrics for which higher is better, a,b,... (the "
                   "others: lower is better)")
    p.add_argument("--references", action="store_true", help="add the runs as the workspace's references (runs at "
                   "a larger scale that `demix validate` ranks the study's predictor against) instead of a study")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: the workspace's)")
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    """Import the table; print what was imported, left out and why."""
    from demix_core.runs.importer import import_runs

    higher = [h for h in split_items(args.higher_is_better) if h]
    report = import_runs(args.workspace, args.mixtures, args.scores, study=args.study, key=args.key,
                         objectives=args.objectives, higher_is_better=higher, references=args.references,
                         storage=args.storage)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    print("\n".join(report.lines()))
    if report.study:
        print(f"next: demix recommend --workspace {args.workspace} --study {report.study}")
    else:
        print(f"next: demix validate --workspace {args.workspace}")
    return 0
