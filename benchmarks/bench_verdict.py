"""A verdict beyond noise (issue 26): does the recommendation beat the mixture a team already has?

On a built demo workspace (``make run``'s tour, or ``demix tour --workspace W --until paper``), for each suite:

1. a study of the suite on the proxy validation picked (the tour's study ``tour`` for the quick suite; for another
   suite ``verdict-<suite>`` with ``--trials`` trials, made here once);
2. how the pick depends on top-k and on the averaging: the mean of the top k (k in ``--ks``), the single best
   candidate, the best measured trial, each plain and ``--against natural``; every pick scored by the proxy, and
   its gain over natural's proxy score per domain printed (cheap: one proxy evaluation per pick);
3. the recommendation (plain, and ``--against natural``) trained at ``--seeds`` seeds, and natural and uniform at
   as many (the loop's models when the tour trained them, else trained here);
4. every trained model of the workspace scored on the suite; the noise floor pooled over its repeated mixtures;
   per domain each recommendation minus natural and minus uniform with its 95% interval and call.

Prints, per suite, the pick table and the verdict table with the floor, then whether the goal holds: a
recommendation that beats natural beyond noise on some domain with no domain worse beyond noise.

    .venv/bin/python benchmarks/bench_verdict.py --workspace workspace/demo [--suites quick,paper] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demix_core.engine import Engine
from demix_core.errors import StudyError, UnknownStudyError
from demix_core.mixing.mixture import Mixture
from demix_core.search import record
from demix_core.search.against import Against, NothingBeats, parse_target
from demix_core.search.recommend import measure_target, recommend_for_study
from demix_core.search.study import create_study, load_study
from demix_core.search.worker import Worker
from demix_core.train.references import default_name, find_reference, train_workspace_reference
from demix_core.validation.calls import domain_calls
from demix_core.validation.noise import reference_noise, study_floor
from demix_core.workspace.manifest import Workspace, load_workspace
from demix_core.workspace.records import read_validation

TOUR_STUDY = "tour"


def suite_study(ws: Workspace, suite: str, trials: int, log: Any) -> Any:
    """The suite's study: the tour's for the quick suite when it has enough trials, else ``verdict-<suite>``."""
    if suite == "quick":
        try:
            study = load_study(ws, TOUR_STUDY)
            if record.suite(study.user_attrs) == suite:
                return study
        except UnknownStudyError:  # no tour study: make one below
            pass
    pick = (read_validation(ws, suite) or {}).get("pick") or {}
    name = f"verdict-{suite}"
    study = create_study(ws, name, suite=suite, n_trials=trials, proxy=pick.get("proxy"), seed=0)
    done = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
    if done < trials:
        log(f"study {name}: {trials - done} more trials of the {record.study_proxy(study)} proxy on the {suite} suite")
        Worker(ws, name, device="cpu", log=lambda s: None).run(trials)
    return load_study(ws, name)


def picks(ws: Workspace, study: Any, natural: Against, ks: Sequence[int], samples: int) -> list[dict[str, Any]]:
    """Every (averaging, k) pick, plain and against natural (--beat every, and some): the mixture, or why none
    qualifies."""
    from dataclasses import replace

    out = []
    proxy = record.study_proxy(study)
    configs = [("mean", k) for k in ks] + [("best", 1), ("trial", 1)]
    asks = {"-": None, "natural": natural, "natural/some": replace(natural, beat="some")}
    for label, against in asks.items():
        for pick, k in configs:
            row: dict[str, Any] = {"pick": pick, "k": k, "against": label}
            try:
                rec = recommend_for_study(ws, study, top_k=k, samples=samples, proxy=proxy, against=against,
                                          pick=pick)
                row.update(mixture=rec.mixture.as_dict(), qualifies=(rec.against or {}).get("pick_qualifies"))
            except NothingBeats as exc:
                row.update(mixture=None, blocking=exc.screen.blocking())
            out.append(row)
    return out


def model_names(ws: Workspace, mixture: Mapping[str, float], prefix: str, seeds: int) -> list[str]:
    """The references that train ``mixture`` at seeds 0..seeds-1: existing ones where the workspace has them."""
    mix = Mixture.from_mapping(ws.component_names, mixture)
    base = find_reference(ws, mix)
    name = base.name if base is not None else default_name(mix, prefix)
    out = []
    for s in range(seeds):
        found = find_reference(ws, mix, seed=s)
        out.append(found.name if found is not None else (name if s == 0 else f"{name}-s{s}"))
    return out


def train(ws: Workspace, mixture: Mapping[str, float], names: Sequence[str], log: Any) -> Workspace:
    """Train what is missing of ``names`` (seed i for the i-th)."""
    have = {r.name for r in ws.references}
    for s, name in enumerate(names):
        if name not in have:
            log(f"training {name} (seed {s})")
            t = time.perf_counter()
            train_workspace_reference(ws, Mixture.from_mapping(ws.component_names, mixture), name=name, seed=s,
                                      log=lambda line: None)
            log(f"  {name}: {time.perf_counter() - t:.0f} s")
            ws = load_workspace(ws.root)
    return ws


def score_all(ws: Workspace, engine: Engine, log: Any) -> dict[str, dict[str, float]]:
    """Every reference model's domain scores on the engine's suite."""
    out = {}
    for r in ws.references:
        if r.kind == "reference":
            out[r.name] = dict(engine.score_checkpoint(ws.path(r.path)).domains)
    log(f"scored {len(out)} trained models on the {engine.suite.name} suite")
    return out


def verdict_rows(ws: Workspace, scores: Mapping[str, Mapping[str, float]], roles: Mapping[str, list[str]],
                 mixtures: Mapping[str, Mapping[str, float]],
                 domains: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per role: mean scores over its seeds and, for each recommendation, its calls against natural and uniform;
    and the floor pooled over every repeated mixture of the workspace."""
    refs = [r for r in ws.references if r.kind == "reference" and r.name in scores]
    floor = reference_noise(ws.component_names, [r.mixture for r in refs],
                            {d: [scores[r.name][d] for r in refs] for d in domains})
    df = (floor.runs - floor.mixtures) or None
    means = {role: {d: float(np.mean([scores[n][d] for n in names])) for d in domains}
             for role, names in roles.items()}
    rows = []
    for role, names in roles.items():
        row: dict[str, Any] = {"model": role, "seeds": len(names), "scores": means[role],
                               "label": Mixture.from_mapping(ws.component_names, mixtures[role]).label(2)}
        if role.startswith("recommended"):
            for base in ("natural", "uniform"):
                row[f"minus {base}"] = domain_calls(means[role], means[base], floor.spread or None,
                                                    repeats=(len(names), len(roles[base])), df=df)
        rows.append(row)
    return rows, {"domains": floor.spread, "mixtures": floor.mixtures, "runs": floor.runs, "df": df}


def fmt_call(c: Mapping[str, Any]) -> str:
    ci = "" if c.get("low") is None else f" [{c['low']:+.3f},{c['high']:+.3f}]"
    return f"{c['difference']:+.3f}{ci} {c['call']}"


def print_suite(suite: str, study: Any, pick_rows: Sequence[dict[str, Any]], proxy_gain: Mapping[str, Any],
                rows: Sequence[dict[str, Any]], floor: Mapping[str, Any], domains: Sequence[str]) -> None:
    """The suite's two tables and its floor."""
    print(f"\n== {suite} suite: study {study.study_name!r} ({len(study.trials)} trials, "
          f"{record.study_proxy(study)} proxy) ==")
    print("pick dependence (proxy-measured gain over natural's proxy score, per domain):")
    print(f"  {'pick':<6}{'k':>6}  {'against':<13}" + "".join(f"{d:>10}" for d in domains) + "  mixture")
    for r in pick_rows:
        key = f"{r['pick']}/{r['k']}/{r['against']}"
        gains = proxy_gain.get(key)
        cells = ("".join(f"{gains[d]:>+10.4f}" for d in domains) if gains is not None
                 else f"  none qualifies: {r.get('blocking')} blocks")
        label = Mixture.from_mapping(list(r["mixture"]), r["mixture"]).label(2) if r["mixture"] else ""
        print(f"  {r['pick']:<6}{r['k']:>6}  {r['against']:<13}{cells}  {label}")
    print("noise floor (seed sd pooled over {mixtures} repeated mixtures, {runs} models, df {df}): ".format(**floor)
          + ", ".join(f"{d} {v:.4f}" for d, v in floor["domains"].items()))
    print(f"  {'model':<22}{'seeds':>6}" + "".join(f"{d:>10}" for d in domains))
    for r in rows:
        print(f"  {r['model']:<22}{r['seeds']:>6}" + "".join(f"{r['scores'][d]:>10.4f}" for d in domains)
              + f"  {r['label']}")
    for r in rows:
        for base in ("natural", "uniform"):
            if f"minus {base}" in r:
                calls = r[f"minus {base}"]
                print(f"  {r['model']} minus {base}: " + "; ".join(f"{d} {fmt_call(calls[d])}" for d in domains))


def goal(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The recommendations that beat natural beyond noise on some domain and lose on none."""
    won = []
    for r in rows:
        calls = r.get("minus natural")
        if calls and any(c["call"] == "better" for c in calls.values()) and \
                not any(c["call"] == "worse" for c in calls.values()):
            won.append(r["model"])
    return won


def run_suite(ws: Workspace, suite: str, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """Steps 1-4 for one suite."""
    study = suite_study(ws, suite, args.trials, log)
    domains = record.domains(study)
    floor, source = study_floor(ws, study)
    log(f"{suite}: the floor --against uses: {floor} ({source})")
    target = parse_target("natural", ws.component_names, [c.tokens for c in ws.components])
    measure_target(ws, study, target.mixture, device="cpu", log=log)  # as `demix recommend --against` does
    natural = Against(target, floor, args.confidence)
    pick_rows = picks(ws, study, natural, args.ks, args.samples)
    engine = Engine(ws, suite=suite, device="cpu")
    kind = record.study_proxy(study)
    nat_proxy = engine.evaluate(engine.mixture(target.mixture.as_dict()), proxy=kind).scores.domains
    gains = {}
    for r in pick_rows:
        if r["mixture"]:
            got = engine.evaluate(engine.mixture(r["mixture"]), proxy=kind).scores.domains
            gains[f"{r['pick']}/{r['k']}/{r['against']}"] = {d: got[d] - nat_proxy[d] for d in domains}
    def chosen_row(label: str) -> dict[str, Any]:
        return next(r for r in pick_rows if (r["pick"], r["k"], r["against"]) == (args.pick, args.top_k, label))

    every = chosen_row("natural")
    chosen = {"recommended": chosen_row("-"),  # --against natural; --beat some where no candidate beats every domain
              "recommended vs natural": every if every["mixture"] else chosen_row("natural/some")}
    mixtures = {"natural": target.mixture.as_dict(), "uniform": {n: 1 / len(ws.component_names)
                                                               for n in ws.component_names}}
    mixtures.update({role: r["mixture"] for role, r in chosen.items() if r["mixture"]})
    for role, r in chosen.items():
        if not r["mixture"]:
            log(f"{role}: no candidate qualifies ({r.get('blocking')} blocks); nothing to train")
    roles = {}
    for role, mix in mixtures.items():
        prefix = {"natural": "loop-natural", "uniform": "loop-uniform"}.get(role, f"bench-{suite}")
        roles[role] = model_names(ws, mix, prefix, args.seeds)
        ws = train(ws, mix, roles[role], log)
    scores = score_all(ws, engine, log)
    rows, floor_used = verdict_rows(ws, scores, roles, mixtures, domains)
    print_suite(suite, study, pick_rows, gains, rows, floor_used, domains)
    won = goal(rows)
    print(f"goal on the {suite} suite: " + (f"met by {', '.join(won)}" if won else
                                            "not met (no recommendation beats natural beyond noise without losing a "
                                            "domain beyond noise)"))
    return {"suite": suite, "study": study.study_name, "picks": pick_rows, "proxy_gain_over_natural": gains,
            "models": {role: {"names": names, "mixture": mixtures[role]} for role, names in roles.items()},
            "rows": rows, "floor": floor_used, "goal_met_by": won}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workspace", default="workspace/demo")
    p.add_argument("--suites", default="quick,paper")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--trials", type=int, default=48, help="trials of a suite's study made here")
    p.add_argument("--ks", default="16,128,1024", help="the k of the mean-of-top-k picks compared")
    p.add_argument("--top-k", type=int, default=128, help="the k of the recommendation trained")
    p.add_argument("--pick", default="mean", help="the averaging of the recommendation trained")
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--confidence", type=float, default=0.8)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    args.ks = [int(k) for k in args.ks.split(",")]
    if args.pick == "mean" and args.top_k not in args.ks:
        args.ks.append(args.top_k)
    if args.pick != "mean":
        args.top_k = 1
    started = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {line}", flush=True)

    ws = load_workspace(args.workspace)
    if sum(r.kind == "reference" for r in ws.references) < 3:
        raise StudyError(f"{ws.root} has too few references; run `demix tour --workspace {ws.root} --until paper`")
    out = [run_suite(load_workspace(args.workspace), s.strip(), args, log) for s in args.suites.split(",")]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n", encoding="utf-8")
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
