"""``demix tour``: the demo from nothing to a verdict, stage by stage, resumable (``make run`` starts it in the
background)."""

from __future__ import annotations

import argparse
from typing import Any

from demix_core.cli.common import lazy_option


def register(sub: Any) -> None:
    """Add the tour command."""
    t = sub.add_parser("tour", help="build the demo and take it to a verdict: components, references, validation, a "
                       "study, the recommendation and baselines trained, validation again (resumable)")
    t.add_argument("--workspace", default="workspace/demo", help="the demo workspace folder (default: %(default)s)")
    lazy_option(t, "--until", metavar="STAGE", names=_stage_names, default="paper",
                help="the last stage to run, one of %(stages)s (default: all; components: stop after the demo's "
                     "components)", texts={"stages": lambda: ", ".join(_stage_names())})
    t.add_argument("--quick", action="store_true", help="tiny models, few references and trials (tests, smoke runs)")
    t.add_argument("--background", action="store_true",
                   help="run as a background job of the workspace (its progress on the Workspace page), or join the "
                        "one that runs; returns at once")
    t.add_argument("--status", action="store_true", help="print where the tour stands and return")
    t.set_defaults(func=run_tour_command)


def _stage_names() -> list[str]:
    from demix_core.tour.stages import NAMES

    return list(NAMES)


def run_tour_command(args: argparse.Namespace) -> int:
    """Run, start, join or show the tour."""
    from demix_core.tour.run import remaining, run_tour, start_tour
    from demix_core.tour.status import stage_lines, tour_status

    if args.status:
        status = tour_status(args.workspace)
        print("\n".join(stage_lines(status)) if status.stages else f"no tour has started in {args.workspace}")
        return 0
    if args.background:
        left = remaining(args.workspace, args.until)
        if not left:
            print(f"the tour of {args.workspace} is done up to {args.until}: the Validate page shows its verdict")
            return 0
        job, started = start_tour(args.workspace, until=args.until, quick=args.quick)
        verb = "started" if started else "already running; joined"
        print(f"tour {verb} in the background (job {job.id}, pid {job.pid}): {', '.join(left)}; progress on the "
              f"Workspace page, the log in {job.log_file}")
        return 0
    run_tour(args.workspace, until=args.until, quick=args.quick, log=lambda s: print(s, flush=True))
    print("\n".join(stage_lines(tour_status(args.workspace))))
    return 0
