"""``demix merge`` and ``demix inspect``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from demix_core.errors import ConfigError
from demix_core.io.atomic import check_output, refuse_inputs
from demix_core.mixing.pairs import parse_pairs


def register(sub: Any) -> None:
    """Add the merge and inspect commands."""
    p = sub.add_parser("merge", help="merge component checkpoints with mixture weights and export")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--components", help="comma-separated checkpoint folders")
    src.add_argument("--workspace", help="a workspace folder: its components, names and base")
    p.add_argument("--weights", "--mixture", required=True, dest="weights",
                   help="0.5,0.3,0.2 or name=0.5,name=0.3 (folder names, or the workspace's component names)")
    p.add_argument("--method", default="linear", help="merge method (default: linear)")
    p.add_argument("--base", default=None, help="base checkpoint (task_arithmetic, ties, dare_*)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="method parameter, e.g. --param density=0.5 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed for random masks (dare_*)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--out", required=True, help="output folder (a Hugging Face model folder)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run_merge)

    q = sub.add_parser("inspect", help="print the compatibility report of checkpoint folders")
    q.add_argument("paths", nargs="+", help="checkpoint folders")
    q.set_defaults(func=run_inspect)


def parse_params(items: list[str]) -> dict[str, float]:
    """``["density=0.5"]`` (one ``--param`` each) -> ``{"density": 0.5}``."""
    return parse_pairs(items, what="--param", example="--param density=0.5") if items else {}


def run_merge(args: argparse.Namespace) -> int:
    """Merge and export."""
    from demix_core.export.merged import export_merged
    from demix_core.io.checkpoints import open_checkpoint  # torch, like the merge and export below
    from demix_core.merge import ResidentComponents, get_method
    from demix_core.mixing.mixture import Mixture

    check_output(args.out, force=args.force)
    params = parse_params(args.param)
    method = get_method(args.method, seed=args.seed, params=params)  # validates before loading
    ws_names: list[str] | None = None
    if args.workspace:
        from demix_core.workspace.manifest import load_workspace

        ws = load_workspace(args.workspace)
        paths, ws_names = [str(p) for p in ws.component_paths()], list(ws.component_names)
        args.base = args.base or (str(ws.base_path()) if ws.base_path() else None)
    else:
        paths = [p.strip() for p in args.components.split(",") if p.strip()]
    if not paths:
        raise ConfigError("--components is empty; give comma-separated checkpoint folders")
    inputs = {f"component {p!r}": p for p in paths}
    if args.base:
        inputs["base"] = args.base
    refuse_inputs(args.out, inputs)
    ckpts = [open_checkpoint(p) for p in paths]
    names = ws_names or [c.name for c in ckpts]
    if len(set(names)) != len(names):
        names = [f"c{i + 1}" for i in range(len(ckpts))]
    mixture = Mixture.parse(args.weights, names)
    if method.needs_base and not args.base:
        raise ConfigError(f"method {args.method!r} needs --base DIR (the components' shared base)")
    base = open_checkpoint(args.base) if args.base else None
    start = time.perf_counter()
    resident = ResidentComponents(ckpts, names=names, base=base, device=args.device, log=print)
    out = export_merged(resident, mixture, args.out, method=args.method, params=params, seed=args.seed,
                        force=args.force)
    print(f"merged {mixture.label(3)} with {args.method} on {resident.device} "
          f"in {time.perf_counter() - start:.2f}s -> {out}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Print the compatibility report; exit 1 when the checkpoints cannot be merged."""
    from demix_core.io.checkpoints import check_compatibility, open_checkpoint  # torch

    report = check_compatibility([open_checkpoint(p) for p in args.paths])
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
