"""``demix demo`` (build the demo workspace), ``demix init`` (a workspace from checkpoints trained elsewhere)
and ``demix workspace`` (check and show a workspace; ``add-component``, ``add-reference``, ``train-reference``,
``train-references``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from demix_core.cli.common import non_negative_int, positive_int
from demix_core.errors import ConfigError
from demix_core.mixing.pairs import format_pairs


def register(sub: Any) -> None:
    """Add the workspace commands."""
    d = sub.add_parser("demo", help="build the demo workspace from real data (idempotent)")
    d.add_argument("--workspace", default="workspace/demo", help="folder (default workspace/demo)")
    d.add_argument("--quick", action="store_true", help="tiny sizes (< 1 minute)")
    d.add_argument("--references", type=int, default=0, metavar="N",
                   help="also train N reference models on sampled mixtures and their trained proxies")
    d.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="train the N references at training seed S (default 0): another seed trains repeats "
                        "ref-XX-sS of the same mixtures (no trained proxies), from which `demix validate` measures "
                        "the noise floor; needs --references")
    d.set_defaults(func=run_demo)

    i = sub.add_parser("init", help="make a workspace from component checkpoints (checked, not copied)")
    i.add_argument("dir", metavar="DIR", help="the workspace folder (demix.yaml is written there)")
    i.add_argument("--components", required=True, help="comma-separated checkpoint folders")
    i.add_argument("--names", default=None, help="one name per component (default: the folder names)")
    i.add_argument("--domains", default=None, help="one domain per component, e.g. general,code,math "
                   "(default: the component's name)")
    i.add_argument("--base", default=None, help="the components' shared base checkpoint")
    i.add_argument("--heldout", default=None, help="one held-out text file per component: .txt, .jsonl, "
                   ".jsonl.gz or .parquet")
    i.add_argument("--text-field", default="text", help="JSON field / parquet column with the text (default text)")
    i.add_argument("--heldout-tokens", type=int, default=None, metavar="N",
                   help="tokens per held-out file in the quick suite: the first N (default 16384)")
    i.add_argument("--tokenizer", default=None, help="tokenizer folder, when the first component has none")
    i.add_argument("--force", action="store_true", help="replace an existing demix.yaml")
    i.set_defaults(func=run_init)

    _register_workspace(sub)


def _register_workspace(sub: Any) -> None:
    """Add ``demix workspace`` and its actions."""
    w = sub.add_parser("workspace", help="check a workspace's manifest and show what it holds; add to it; "
                       "train-reference, train-references")
    w.add_argument("--workspace", default=None, help="workspace folder")
    w.add_argument("--json", action="store_true", help="print the manifest as JSON")
    w.set_defaults(func=run_show)
    ws_sub = w.add_subparsers(dest="workspace_command", metavar="ACTION")
    c = ws_sub.add_parser("add-component", help="add a component checkpoint (checked against the others)")
    c.add_argument("dir", metavar="DIR", help="the workspace folder")
    c.add_argument("--name", required=True, help="the component's name")
    c.add_argument("--path", required=True, help="its checkpoint folder")
    c.add_argument("--domain", default=None, help="its domain (default: its name)")
    c.add_argument("--heldout", default=None, help="its held-out text file (.txt, .jsonl, .jsonl.gz, .parquet)")
    c.add_argument("--text-field", default="text", help="JSON field / parquet column with the text")
    c.set_defaults(func=run_add_component)
    r = ws_sub.add_parser("add-reference", help="add a model really trained on a mixture (for validation)")
    r.add_argument("dir", metavar="DIR", help="the workspace folder")
    r.add_argument("--name", required=True, help="the reference's name")
    r.add_argument("--path", required=True, help="its checkpoint folder")
    r.add_argument("--mixture", required=True, help="the mixture it was trained on, e.g. a=0.5,b=0.5")
    r.set_defaults(func=run_add_reference)
    t = ws_sub.add_parser("train-reference", help="train a mixture with the workspace's reference recipe (resumable) "
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
    t.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="training seed (default 0); another seed trains a repeat of the mixture, named "
                        "<name>-s<S> by default, from which `demix validate` measures the noise floor")
    t.set_defaults(func=run_train_reference)
    s = ws_sub.add_parser("train-references", help="train N references on mixtures of the paper's Dirichlet prior and "
                        "their compute-matched trained proxies (resumable: trained mixtures are skipped)")
    s.add_argument("folder", metavar="DIR", help="workspace folder")
    s.add_argument("--count", type=positive_int, required=True, metavar="N", help="how many mixtures")
    s.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="which mixtures are drawn (default 0: the demo's references)")
    s.add_argument("--train-seed", type=non_negative_int, default=0, metavar="S",
                   help="training seed (default 0): another seed trains repeats ref-XX-sS of the same mixtures "
                        "(no trained proxies), from which `demix validate` measures the noise floor")
    s.add_argument("--no-trained-proxies", action="store_true", help="train the references only")
    s.set_defaults(func=run_train_references)


def run_demo(args: argparse.Namespace) -> int:
    """Build the demo workspace."""
    if args.seed and not args.references:
        raise ConfigError(f"--seed {args.seed} is the references' training seed: give --references N too")
    from demix_core.train.demo import build_demo  # trains models: loads torch

    build_demo(args.workspace, quick=args.quick, references=args.references, train_seed=args.seed)
    return 0


def _report(prepared: Any) -> None:
    """Print a prepared change's compatibility report."""
    print("\n".join(prepared.report.lines()))


def heldout_line(ws: Any) -> str:
    """What the quick suite scores, stated for people: the slice of each held-out file."""
    if not ws.datasets:
        return "quick suite: no held-out files (score with --suite paper or --tasks)"
    return (f"quick suite: the first {ws.heldout_slice():,} tokens of each of {len(ws.datasets)} held-out file(s) "
            "(a deterministic slice)")


def run_init(args: argparse.Namespace) -> int:
    """Check the checkpoints and held-out files, print the compatibility report, write demix.yaml."""
    from demix_core.workspace.init import prepare_init  # torch (checkpoints)
    from demix_core.workspace.manifest import DEFAULT_HELDOUT_TOKENS

    prepared = prepare_init(
        args.dir, args.components, names=args.names, domains=args.domains, base=args.base, heldout=args.heldout,
        text_field=args.text_field, heldout_tokens=args.heldout_tokens or DEFAULT_HELDOUT_TOKENS,
        tokenizer=args.tokenizer, force=args.force)
    _report(prepared)
    path = prepared.save(force=args.force)
    ws = prepared.workspace
    print(f"wrote {path}: {len(ws.components)} components ({', '.join(ws.component_names)}), suite {ws.suite}")
    print(heldout_line(ws))
    return 0


def run_add_component(args: argparse.Namespace) -> int:
    """Check the new component against the workspace's, print the report, save."""
    from demix_core.workspace.init import prepare_component

    prepared = prepare_component(args.dir, args.name, args.path, domain=args.domain, heldout=args.heldout,
                                 text_field=args.text_field)
    _report(prepared)
    path = prepared.save()
    print(f"added component {args.name!r} to {path}; existing studies keep their own component list")
    return 0


def run_add_reference(args: argparse.Namespace) -> int:
    """Check the reference against the components, print the report, save."""
    from demix_core.workspace.init import prepare_reference

    prepared = prepare_reference(args.dir, args.name, args.path, args.mixture)
    _report(prepared)
    path = prepared.save()
    mix = prepared.workspace.references[-1].mixture
    print(f"added reference {args.name!r} ({format_pairs(mix, sep=', ')}) to {path}")
    return 0


def run_train_reference(args: argparse.Namespace) -> int:
    """Train a mixture as a reference of the workspace."""
    from demix_core.train.references import train_workspace_reference  # trains: loads torch
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(args.folder)
    entry = train_workspace_reference(ws, args.mixture, name=args.name, steps=args.steps, batch=args.batch,
                                      seq_len=args.seq_len, lr=args.lr, share=args.share, seed=args.seed,
                                      log=lambda s: print(s, flush=True))
    print(f"reference {entry.name} added to {ws.root / 'demix.yaml'} ({len(ws.references)} references)")
    return 0


def run_train_references(args: argparse.Namespace) -> int:
    """Train a set of references (and their trained proxies) in the workspace."""
    from demix_core.train.reference_set import train_reference_set  # trains: loads torch
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(args.folder)
    entries = train_reference_set(ws, args.count, seed=args.seed, train_seed=args.train_seed,
                                  trained_proxies=not args.no_trained_proxies, log=lambda s: print(s, flush=True))
    refs = sum(r.kind == "reference" for r in ws.references)
    print(f"{len(entries)} references of the set in {ws.root / 'demix.yaml'} ({refs} references in all)")
    return 0


def references_line(ws: Any) -> str:
    """``5 reference model(s) of 3 mixture(s) (+ 3 trained proxies)``: the counts, repeats of a mixture counted once
    among the mixtures."""
    from demix_core.workspace.repeats import group_by_mixture

    groups = group_by_mixture(ws.references)
    refs = sum(len(g.references) for g in groups)
    proxies = len(ws.references) - refs
    return (f"{refs} reference model(s) of {sum(bool(g.references) for g in groups)} mixture(s)"
            + (f" (+ {proxies} trained prox{'y' if proxies == 1 else 'ies'})" if proxies else ""))


def mixture_lines(ws: Any) -> list[str]:
    """One line per mixture: its weights, its references' seeds and names (the repeats side by side), its trained
    proxies."""
    from demix_core.workspace.repeats import group_by_mixture

    groups = group_by_mixture(ws.references)
    labels = [format_pairs(g.mixture, digits=2, sep=" ", nonzero=True) for g in groups]
    width = max(map(len, labels), default=0)
    out = []
    for label, g in zip(labels, groups):
        models = (f"seed{'s' if len(g.seeds) > 1 else ''} {', '.join(map(str, g.seeds))}: {', '.join(g.names)}"
                  if g.references else "no reference")
        proxies = f"; trained proxy {', '.join(t.name for t in g.trained_proxies)}" if g.trained_proxies else ""
        out.append(f"mixture {label:<{width}}  {models}{proxies}")
    return out


def run_show(args: argparse.Namespace) -> int:
    """Load (so check) the manifest and print its components, datasets, suite, storage and study defaults."""
    from demix_core.workspace.manifest import load_workspace  # numpy

    if not args.workspace:
        raise ConfigError("give --workspace DIR to show a workspace, or an action: add-component, add-reference, "
                          "train-reference, train-references")
    ws = load_workspace(args.workspace)
    if args.json:
        print(json.dumps({"root": str(ws.root), **ws.to_dict()}, indent=2))
        return 0
    if ws.is_table:
        print(f"table workspace {ws.name} at {ws.root} (past runs, no checkpoints): storage {ws.storage_url()}")
        print(f"  domains ({len(ws.component_names)}): {', '.join(ws.component_names)}")
        print(f"  {len(ws.references)} reference run(s) with scores; add runs with `demix import-runs`")
        return 0
    print(f"workspace {ws.name} at {ws.root}: suite {ws.suite}, storage {ws.storage_url()}")
    for c in ws.components:
        print(f"  component {c.name:<12} domain {c.domain:<10} {c.tokens:>12,} tokens  {c.path}")
    for d in ws.datasets:
        print(f"  dataset   {d.name:<12} domain {d.domain:<10} {d.tokens:>12,} tokens  {d.heldout}")
    print(f"  {references_line(ws)}; base {ws.base or 'none'}")
    for line in mixture_lines(ws):
        print(f"  {line}")
    print(heldout_line(ws))
    print("new studies: " + ", ".join(f"{k} {ws.study_default(k)}" for k in ("sampler", "method", "seed")))
    return 0
