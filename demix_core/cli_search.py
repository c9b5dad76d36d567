"""``demix study``, ``demix worker``, ``demix recommend`` and ``demix validate``."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from demix_core.cli import positive_int


def register(sub: Any) -> None:
    """Add the search commands."""
    s = sub.add_parser("study", help="create, run, inspect and export Optuna studies over mixtures")
    ssub = s.add_subparsers(dest="study_command", metavar="ACTION", required=True)

    c = ssub.add_parser("create", help="create a study (before starting workers)")
    _ws(c)
    c.add_argument("--sampler", default="front", help="tpe, nsga2, gp, random, demix (the paper's rounds) or front "
                   "(fills the Pareto front in the fewest trials)")
    c.add_argument("--suite", default=None, help="quick or paper (default: the workspace's)")
    c.add_argument("--method", default="linear", help="merge method")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--n-trials", type=positive_int, default=None, help="intended budget (scales the DeMix rounds)")
    c.set_defaults(func=run_create)

    r = ssub.add_parser("run", help="start N local worker processes and wait for them")
    _ws(r)
    r.add_argument("--workers", type=positive_int, default=1)
    r.add_argument("--n-trials", type=positive_int, required=True, help="complete trials the study should reach")
    r.add_argument("--device", default="auto")
    r.add_argument("--sampler", default="front", help="used when the study does not exist yet")
    r.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per worker (default: the cores divided among the workers; use 1 on a "
                        "machine shared with other jobs)")
    r.set_defaults(func=run_run)

    st = ssub.add_parser("status", help="trial counts and the Pareto front")
    _ws(st)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=run_status)

    e = ssub.add_parser("export", help="write the trials as CSV or JSON")
    _ws(e)
    e.add_argument("--format", choices=["csv", "json"], default="csv")
    e.add_argument("--out", required=True, help="the file to write")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.set_defaults(func=run_export)

    q = ssub.add_parser("enqueue", help="queue a mixture to be evaluated next")
    _ws(q)
    q.add_argument("--mixture", required=True, help="name=weight,...")
    q.set_defaults(func=run_enqueue)

    w = sub.add_parser("worker", help="evaluate a study's trials on one device")
    _ws(w)
    w.add_argument("--device", default="auto")
    w.add_argument("--n-trials", type=positive_int, default=None,
                   help="stop when the study has this many complete trials")
    w.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    w.add_argument("--suite", default=None, help="must match the study's suite (default: the study's)")
    w.set_defaults(func=run_worker)

    rc = sub.add_parser("recommend", help="fit the DeMix predictor on a study and recommend a mixture")
    _ws(rc)
    rc.add_argument("--top-k", type=positive_int, default=128)
    rc.add_argument("--samples", type=positive_int, default=100_000)
    rc.add_argument("--weighting", default="composite", help="composite, average, or domain=w,...")
    rc.add_argument("--enqueue", action="store_true", help="queue the recommendation as a trial")
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=run_recommend)

    v = sub.add_parser("validate", help="rank consistency of merged proxies against reference models")
    v.add_argument("--workspace", required=True)
    v.add_argument("--suite", default=None, help="quick or paper (default: the workspace's)")
    v.add_argument("--limit", type=positive_int, default=None, help="documents per lm-eval task")
    v.add_argument("--device", default="auto")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=run_validate)


def _ws(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", required=True, help="workspace folder")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: the workspace's)")


def _study_name(args: argparse.Namespace) -> str:
    """The checked ``--study`` (every command that takes one goes through here first)."""
    from demix_core.names import check_study_name

    return check_study_name(args.study)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from demix_core.search.study import load_study
    from demix_core.workspace import load_workspace

    _study_name(args)
    ws = load_workspace(args.workspace)
    return ws, load_study(ws, args.study, storage=args.storage)


def run_create(args: argparse.Namespace) -> int:
    """Create a study."""
    from demix_core.search.study import create_study
    from demix_core.workspace import load_workspace

    _study_name(args)
    ws = load_workspace(args.workspace)
    study = create_study(ws, args.study, sampler=args.sampler, storage=args.storage, suite=args.suite,
                         method=args.method, seed=args.seed, n_trials=args.n_trials, exist_ok=False)
    print(f"created study {args.study!r}: objectives {', '.join(study.metric_names or [])} (maximised), "
          f"sampler {args.sampler}, storage {args.storage or ws.storage_url()}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    """Start workers as separate processes, print progress, wait."""
    from demix_core.search.study import counts, create_study, load_study
    from demix_core.workspace import load_workspace

    _study_name(args)
    ws = load_workspace(args.workspace)
    create_study(ws, args.study, sampler=args.sampler, storage=args.storage, n_trials=args.n_trials)
    study = load_study(ws, args.study, storage=args.storage)
    cmd = [sys.executable, "-m", "demix_core", "worker", "--workspace", str(ws.root), "--study", args.study,
           "--n-trials", str(args.n_trials), "--device", args.device]
    if args.storage:
        cmd += ["--storage", args.storage]
    start = time.perf_counter()
    before = counts(study).get("COMPLETE", 0)
    # Share the cores: each worker process gets its part of them for torch's threads.
    threads = str(args.threads or max(1, (os.cpu_count() or 1) // args.workers))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env) for _ in range(args.workers)]
    try:
        next_report = start + 2
        while any(p.poll() is None for p in procs):
            time.sleep(0.05)  # notice the end at once; report progress every 2 s
            if time.perf_counter() >= next_report:
                next_report += 2
                c = _counts(study)
                states = "  ".join(f"{k.lower()} {v}" for k, v in sorted(c.items())) if c is not None else \
                    "storage unreachable; the workers retry until it is back"
                print(f"  {time.perf_counter() - start:6.1f}s  {states}", flush=True)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    elapsed = time.perf_counter() - start
    final = _counts(study)
    if final is None:
        print(f"workers ended after {elapsed:.1f}s; the storage is unreachable now: check it with "
              "`demix study status` once it is back")
        return 1
    done = final.get("COMPLETE", 0) - before
    print(f"{done} trials in {elapsed:.1f}s with {args.workers} worker(s): {60 * done / elapsed:.1f} trials/minute")
    return 0 if all(p.returncode == 0 for p in procs) else 1


def _counts(study: Any) -> dict[str, int] | None:
    """Trial counts, or None while the storage is unreachable (the workers ride the outage out)."""
    from demix_core.search.resilience import storage_error
    from demix_core.search.study import counts

    try:
        return counts(study)
    except Exception as exc:
        if storage_error(exc) is None:
            raise
        return None


def run_status(args: argparse.Namespace) -> int:
    """Counts and the Pareto front."""
    from demix_core.search.study import counts, trials_frame

    _, study = _load(args)
    c = counts(study)
    front = [{"number": t.number, "mixture": t.user_attrs.get("mixture"),
              "values": dict(zip(study.metric_names or [], t.values or []))} for t in study.best_trials]
    if args.json:
        print(json.dumps({"study": args.study, "counts": c, "objectives": study.metric_names, "pareto_front": front},
                         indent=2))
        return 0
    print(f"study {args.study}: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(c.items())))
    print(f"objectives (maximised): {', '.join(study.metric_names or [])}")
    frame = trials_frame(study)
    if len(frame):
        print("sources: " + ", ".join(f"{k} {int(v)}" for k, v in frame["source"].value_counts().items()))
    print(f"Pareto front ({len(front)} trials):")
    for f in front:
        mix = " ".join(f"{k}={v:.2f}" for k, v in (f["mixture"] or {}).items() if v > 0.005)
        print(f"  #{f['number']:<4} {mix:<50} " + " ".join(f"{k}={v:.4f}" for k, v in f["values"].items()))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write trials to CSV or JSON (atomically)."""
    from demix_core.atomic import atomic_write_text, check_file_output
    from demix_core.search.study import trials_frame

    check_file_output(args.out, force=args.force)
    _, study = _load(args)
    frame = trials_frame(study)
    text = frame.to_csv(index=False) if args.format == "csv" else frame.to_json(orient="records", indent=2,
                                                                                  date_format="iso")
    atomic_write_text(args.out, text, force=args.force)
    print(f"wrote {len(frame)} trials to {args.out}")
    return 0


def run_enqueue(args: argparse.Namespace) -> int:
    """Queue a mixture."""
    from demix_core.search.study import enqueue

    ws, study = _load(args)
    mix = ws.parse_mixture(args.mixture)
    enqueue(study, mix, source="manual")
    print(f"queued {mix.label(3)} in study {args.study}")
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """Run one worker in this process."""
    from demix_core.search.worker import Worker
    from demix_core.workspace import load_workspace

    _study_name(args)
    ws = load_workspace(args.workspace)
    worker = Worker(ws, args.study, storage=args.storage, device=args.device, suite=args.suite)
    print(f"worker {worker.id} on {worker.engine.device}: study {args.study}, suite {worker.engine.suite.name}",
          flush=True)
    done = worker.run(args.n_trials, timeout=args.timeout)
    print(f"worker {worker.id} finished {done} trials", flush=True)
    return 1 if worker.failures >= worker.MAX_CONSECUTIVE_FAILURES else 0


def _weighting(text: str) -> Any:
    if text in ("composite", "average"):
        return text
    from demix_core.errors import ConfigError

    out = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ConfigError(f"--weighting {text!r}: use composite, average or domain=weight,...") from None
        if not sep:
            raise ConfigError(f"--weighting {text!r}: use composite, average or domain=weight,...")
    return out


def run_recommend(args: argparse.Namespace) -> int:
    """Fit, rank, recommend (and optionally enqueue)."""
    from demix_core.search.recommend import recommend_for_study
    from demix_core.search.study import enqueue

    ws, study = _load(args)
    rec = recommend_for_study(ws, study, top_k=args.top_k, samples=args.samples, weighting=_weighting(args.weighting),
                              seed=args.seed)
    if args.enqueue:
        enqueue(study, rec.mixture, source="recommendation")
    if args.json:
        print(json.dumps({**rec.to_json(), "enqueued": args.enqueue}, indent=2))
        return 0
    print(f"recommended mixture (top {rec.top_k} of {rec.samples:,} ranked by {args.weighting}, "
          f"{rec.regressor} fit on {rec.trials} trials):")
    for name, w in rec.mixture.as_dict().items():
        print(f"  {name:<10} {w:.3f}")
    print("predicted: " + "  ".join(f"{k}={v:.4f}" for k, v in rec.predicted.items() if "/" not in k))
    print("held-out Spearman of the regressors: " + "  ".join(
        f"{k}={v:.2f}" if not math.isnan(v) else f"{k}=n/a" for k, v in rec.spearman.items()))
    if args.enqueue:
        print(f"queued in study {args.study} (source: recommendation)")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Validate proxies against references."""
    from demix_core.validate import validate_workspace
    from demix_core.workspace import load_workspace

    ws = load_workspace(args.workspace)
    report = validate_workspace(ws, suite=args.suite, device=args.device, limit=args.limit,
                                log=(lambda s: None) if args.json else print)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, default=float))
    else:
        print("\n".join(report.lines()))
    return 0
