"""``demix validate``: rank consistency of both proxy kinds against reference models, and which one to trust."""

from __future__ import annotations

import argparse
import json
from typing import Any

from demix_core.cli.common import lazy_option, positive_int


def register(sub: Any) -> None:
    """Add the validate command."""
    v = sub.add_parser("validate", help="rank consistency of proxies (merged, output ensemble) against reference "
                       "models; records the proxy kind to trust")
    v.add_argument("--workspace", required=True)
    v.add_argument("--suite", default=None, help="quick or paper (default: the workspace's)")
    lazy_option(v, "--proxy", metavar="KIND", names=_proxy_choices, default="both",
                help="proxy kinds to validate: both or one of %(kinds)s (default: both, and the verdict picks one)",
                texts={"kinds": lambda: ", ".join(_proxy_choices()[1:])})
    v.add_argument("--limit", type=positive_int, default=None, help="documents per lm-eval task")
    v.add_argument("--device", default="auto")
    v.add_argument("--no-record", action="store_true",
                   help="do not write <workspace>/validation/<suite>.json (the report and the proxy pick that new "
                        "studies default to)")
    v.add_argument("--study", action="append", default=None,
                   help="a table workspace: the study whose predictor ranks the references (repeat it for several; "
                        "default: every study of imported runs)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Validate proxies against references; record the pick."""
    from demix_core.validation.report import record_validation
    from demix_core.validation.run import validate_workspace
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(args.workspace)
    log = (lambda s: None) if args.json else (lambda s: print(s, flush=True))
    if ws.is_table:  # past runs: the predictor fitted on each study is the proxy
        from demix_core.validation.regression import validate_table

        report: Any = validate_table(ws, studies=args.study, log=log)
    else:
        from demix_core.proxy import kind_names

        kinds = kind_names() if args.proxy == "both" else [args.proxy]
        report = validate_workspace(ws, suite=args.suite, device=args.device, limit=args.limit, proxies=kinds, log=log)
    recorded = None if args.no_record else record_validation(ws, report)
    if args.json:
        print(json.dumps({**report.to_json(), "record": str(recorded) if recorded else None}, indent=2,
                         default=float))
        return 0
    print("\n".join(report.lines()))
    pick = report.pick()
    if recorded is not None and ws.is_table:
        print(f"recorded in {recorded}")
    elif recorded is not None and pick is not None:
        print(f"recorded in {recorded}: new studies on this workspace default to the {pick.proxy} proxy "
              "(a --proxy flag or the manifest's defaults.proxy overrides it)")
    return 0


def _proxy_choices() -> list[str]:
    """``both`` and every registered proxy kind."""
    from demix_core.proxy import kind_names

    return ["both", *kind_names()]
