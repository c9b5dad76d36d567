"""Sampler quality and worker throughput on a workspace (default: the demo) with the quick suite.

Prints, in one run:
1. the hypervolume after 40 trials for each sampler (TPE, NSGA-II, GP, random, DeMix) as a percentage of
   the hypervolume of >= 1,000 evaluated random mixtures (reference point: the worst observed value of
   each objective over everything evaluated);
2. trials per minute for 60 trials with 1 and with 2 local worker processes (SQLite storage).

With ``--constrained`` the comparison runs on a token-budgeted study instead (the demo's manifest is left
alone: the budget lives in memory, the studies in a journal file under /tmp): every dataset at most
``--max-epochs`` epochs of a target of half the workspace's tokens (so each weight is capped at twice its
token share), and the first component at least ``--min-first`` of the mixture. The reference is then
>= 1,000 *feasible* random mixtures (flat Dirichlet draws kept when they satisfy the budget: uniform on
the feasible set), and every sampler's trials are checked to be feasible.

    python benchmarks/bench_search.py [--workspace workspace/demo] [--trials 40] [--reference 1000] [--constrained]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.storages.journal import JournalFileBackend  # noqa: E402

from demix_core.engine import Engine  # noqa: E402
from demix_core.mixing.bounds import Bounds, mixture_from_trial_params
from demix_core.mixing.mixture import param_name, uniform_simplex  # noqa: E402
from demix_core.search import record, samplers  # noqa: E402
from demix_core.search.pareto import hypervolume  # noqa: E402
from demix_core.workspace.budget import Budget
from demix_core.workspace.feasible import resolve_bounds
from demix_core.workspace.manifest import load_workspace  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def run_sampler(engine: Engine, name: str, n: int, seed: int, *, bounds: Bounds | None = None,
                storage: str | None = None) -> np.ndarray:
    """n trials of one sampler (in memory, or in ``storage``), mapped into ``bounds`` as the worker maps them;
    returns (n, D) objective values. Under a budget every evaluated mixture is checked to be feasible."""
    ws = engine.workspace
    domains = engine.suite.domains
    attrs = {"n_trials": n, **({"bounds": bounds.to_json()} if bounds is not None else {})}
    sampler = samplers.get(name).make(ws, attrs, seed=seed)
    study = optuna.create_study(directions=["maximize"] * len(domains), sampler=sampler, storage=storage,
                                study_name=f"bench-{name}" if storage else None)
    study.set_metric_names(domains)

    def objective(trial: optuna.Trial) -> list[float]:
        params = {param_name(c): trial.suggest_float(param_name(c), 0.0, 1.0) for c in engine.names}
        mix = mixture_from_trial_params(engine.names, params, bounds)
        if bounds is not None and not bounds.feasible(mix.array()):
            raise SystemExit(f"sampler {name} evaluated an infeasible mixture: {mix}")
        trial.set_user_attr("mixture", mix.as_dict())
        ev = engine.evaluate(mix)
        return [ev.scores.domains[d] for d in domains]

    study.optimize(objective, n_trials=n)
    return np.array([t.values for t in study.trials])


def feasible_random(bounds: Bounds, n: int, seed: int) -> np.ndarray:
    """n flat-Dirichlet mixtures that satisfy ``bounds`` (rejection: uniform on the feasible set), (n, K)."""
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    drawn = 0
    while sum(len(k) for k in kept) < n:
        x = rng.dirichlet(np.ones(len(bounds.names)), size=20_000)
        drawn += len(x)
        kept.append(x[bounds.feasible(x)])
        if drawn > 20_000_000:
            raise SystemExit("the feasible set is too small to sample by rejection; loosen the budget")
    return np.vstack(kept)[:n]


def bench_budget(ws, max_epochs: float, min_first: float) -> Budget:  # noqa: ANN001 - a Workspace
    """Half the workspace's tokens as the target, ``max_epochs`` for every dataset, a floor on the first."""
    from demix_core.workspace.feasible import available_tokens

    tokens = available_tokens(ws, Budget())
    if any(v is None for v in tokens.values()):
        raise SystemExit(f"the workspace lacks token counts ({tokens}); run `demix budget --measure` on a copy")
    target = sum(int(v or 0) for v in tokens.values()) // 2
    first = ws.component_names[0]
    return Budget.from_dict({"target_tokens": target, "max_epochs": max_epochs,
                             "datasets": {first: {"min_weight": min_first}} if min_first else {}})


def throughput(workspace: Path, workers: int, n: int) -> tuple[float, str]:
    """Trials per minute for n trials with a number of local worker processes, and the study's trial states
    afterwards (checked: n complete, none running or waiting, no mixture completed twice)."""
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        url = f"sqlite:///{tmp}/s.db"
        cli = [sys.executable, "-m", "demix_core"]
        subprocess.run([*cli, "study", "create", "--workspace", str(workspace), "--study", "t", "--storage", url,
                        "--sampler", "random"], check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run([*cli, "study", "run", "--workspace", str(workspace), "--study", "t", "--storage", url,
                        "--workers", str(workers), "--n-trials", str(n), "--device", "cpu"], check=True,
                       capture_output=True)
        rate = 60 * n / (time.perf_counter() - start)
        trials = optuna.load_study(study_name="t", storage=url).get_trials(deepcopy=False)
        states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        mixtures = {tuple(sorted((record.mixture(t) or {}).items())) for t in complete}
        if states["COMPLETE"] != n or states["RUNNING"] or states["WAITING"] or len(mixtures) != len(complete):
            raise SystemExit(f"{workers} workers left the study unclean: {states}, {len(mixtures)} distinct mixtures")
        span = (max(t.datetime_complete for t in complete) - min(t.datetime_start for t in complete)).total_seconds()
        summary = ", ".join(f"{k.lower()} {v}" for k, v in states.items() if v)
        return rate, f"{summary}; {60 * n / span:.1f}/minute from the first trial's start to the last's end"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--reference", type=int, default=1000, help="random mixtures evaluated for the reference front")
    p.add_argument("--throughput-trials", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--constrained", action="store_true", help="compare the samplers on a token-budgeted study")
    p.add_argument("--max-epochs", type=float, default=1.0, help="--constrained: epochs cap of every dataset")
    p.add_argument("--min-first", type=float, default=0.1, help="--constrained: min weight of the first component")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's; use 1 on a machine "
                   "shared with other jobs: spinning threads there cost many times the work)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ws = load_workspace(args.workspace)
    engine = Engine(ws, suite="quick", device="cpu")
    domains = engine.suite.domains
    print(f"workspace {ws.root}: {len(ws.components)} components, objectives {', '.join(domains)} (quick suite)")

    bounds = storage = None
    if args.constrained:
        ws.budget = bench_budget(ws, args.max_epochs, args.min_first)  # in memory only; the manifest is untouched
        bounds = resolve_bounds(ws)
        folder = Path(tempfile.mkdtemp(prefix="i16-bench-search-", dir="/tmp"))
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(folder / "s.log")))
        print(f"budget: {ws.budget.target_tokens:,} target tokens, at most {args.max_epochs:g} epoch(s) per dataset, "
              f"{ws.component_names[0]} >= {args.min_first:g}; studies in {folder / 's.log'}; feasible weights:")
        for line in bounds.describe().splitlines():
            print(f"  {line}", flush=True)

    start = time.perf_counter()
    ref_x = (feasible_random(bounds, args.reference, args.seed + 99) if bounds is not None
             else uniform_simplex(len(engine.names), args.reference, seed=args.seed + 99))
    ref_vals = []
    times = []
    for i, row in enumerate(ref_x):
        t0 = time.perf_counter()
        scores = engine.evaluate(list(row)).scores
        ref_vals.append([scores.domains[d] for d in domains])
        times.append(time.perf_counter() - t0)
        if (i + 1) % 100 == 0:
            print(f"  reference {i + 1}/{len(ref_x)} ({time.perf_counter() - start:.0f}s)", flush=True)
    ref_vals_arr = np.array(ref_vals)
    kind = "feasible random" if bounds is not None else "random"
    print(f"reference: {args.reference} {kind} mixtures evaluated in {time.perf_counter() - start:.0f}s "
          f"(median {statistics.median(times) * 1e3:.0f} ms per merge + quick suite)")

    results = {}
    for name in samplers.names():
        t0 = time.perf_counter()
        results[name] = run_sampler(engine, name, args.trials, args.seed, bounds=bounds, storage=storage)
        print(f"  {name:<7} {args.trials} trials in {time.perf_counter() - t0:.0f}s", flush=True)
    everything = np.vstack([ref_vals_arr, *results.values()])
    ref_point = everything.min(axis=0)
    hv_ref = hypervolume(ref_vals_arr, ref_point)
    print(f"\nhypervolume after {args.trials} trials vs {args.reference} evaluated {kind} mixtures "
          f"(reference point = worst observed per objective):")
    print(f"  {'reference':<10} {hv_ref:.6g}  (100%)")
    best = max(results, key=lambda k: hypervolume(results[k], ref_point))
    for name, vals in results.items():
        hv = hypervolume(vals, ref_point)
        print(f"  {name:<10} {hv:.6g}  ({100 * hv / hv_ref:5.1f}%)" + ("   <- best" if name == best else ""))

    if not args.skip_throughput:
        print(f"\nthroughput, {args.throughput_trials} trials (SQLite, separate worker processes, quick suite):")
        for w in (1, 2):
            rate, states = throughput(ws.root, w, args.throughput_trials)
            print(f"  {w} worker(s): {rate:.1f} trials/minute (wall time incl. process start and component "
                  f"loading; trials: {states}; no trial lost, stuck or completed twice)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
