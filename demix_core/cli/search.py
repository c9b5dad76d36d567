"""``demix study`` (create, run, status, export, enqueue), ``demix worker`` and ``demix recommend``."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from demix_core.cli.common import lazy_option, positive_int
from demix_core.errors import UnknownStudyError
from demix_core.io.atomic import atomic_write_text, check_file_output
from demix_core.io.names import check_study_name

if TYPE_CHECKING:
    from demix_core.workspace.manifest import Workspace

# demix_core.search.study, .trials, .worker, .recommend and .resilience load Optuna and pandas (and the worker
# torch): seconds; the workspace and mixtures load numpy (~0.4 s). Each command imports what it needs
# when it runs, so `demix --help` and argument errors answer in ~0.2 s (.record and the .samplers registry,
# imported above for the help texts, load neither).


def register(sub: Any) -> None:
    """Add the search commands."""
    s = sub.add_parser("study", help="create, run, inspect and export Optuna studies over mixtures")
    ssub = s.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    _register_create(ssub)
    _register_run(ssub)
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
    _register_worker(sub)


def _register_create(ssub: Any) -> None:
    c = ssub.add_parser("create", help="create a study (before starting workers)")
    _ws(c)
    lazy_option(c, "--sampler", metavar="SAMPLER", help="%(samplers)s; default: the workspace's defaults, else front",
                texts={"samplers": _sampler_choices})
    c.add_argument("--suite", default=None, help="quick or paper (default: the workspace's)")
    c.add_argument("--tasks", default=None, help="comma-separated lm-eval task names scored instead of a suite; "
                   "each task's domain (an objective) is metadata.domain in its YAML, else its name")
    c.add_argument("--include-path", action="append", default=[], help="folder of lm-eval task YAML for --tasks")
    c.add_argument("--method", default=None, help="merge method (default: the workspace's defaults, else linear)")
    c.add_argument("--seed", type=int, default=None, help="sampler seed (default: the workspace's defaults, else 0)")
    c.add_argument("--n-trials", type=positive_int, default=None, help="intended budget (scales the DeMix rounds)")
    _proxy(c, "proxy kind the workers score: %(kinds)s; default: the manifest's defaults.proxy, else the "
              "kind `demix validate` picked, else %(default_kind)s")
    c.set_defaults(func=run_create)


def _register_run(ssub: Any) -> None:
    r = ssub.add_parser("run", help="start N local worker processes and wait for them")
    _ws(r)
    r.add_argument("--workers", type=positive_int, default=1)
    r.add_argument("--n-trials", type=positive_int, required=True, help="complete trials the study should reach")
    r.add_argument("--device", default="auto")
    r.add_argument("--sampler", default=None, help="used when the study does not exist yet (default: the "
                   "workspace's defaults, else front)")
    _proxy(r, "used when the study does not exist yet (as in study create)")
    r.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per worker (default: the cores divided among the workers; use 1 on a "
                        "machine shared with other jobs)")
    r.set_defaults(func=run_run)


def _register_worker(sub: Any) -> None:
    w = sub.add_parser("worker", help="evaluate a study's trials on one device")
    _ws(w)
    w.add_argument("--device", default="auto")
    w.add_argument("--n-trials", type=positive_int, default=None,
                   help="stop when the study has this many complete trials")
    w.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    w.add_argument("--suite", default=None, help="must match the study's suite (default: the study's)")
    w.set_defaults(func=run_worker)


def _sampler_choices() -> str:
    """The registered samplers with their summaries (the registry loads no Optuna)."""
    from demix_core.search import samplers

    shown = [f"{s.name} ({s.summary})" for s in map(samplers.get, samplers.names())]
    return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)


def _kind_names() -> list[str]:
    from demix_core.proxy import kind_names

    return kind_names()


def _describe_kinds() -> str:
    from demix_core.proxy import describe

    return describe()


def _default_kind() -> str:
    from demix_core.proxy import DEFAULT_KIND

    return DEFAULT_KIND


def _proxy(p: argparse.ArgumentParser, text: str) -> None:
    lazy_option(p, "--proxy", metavar="KIND", names=_kind_names, help=text,
                texts={"kinds": _describe_kinds, "default_kind": _default_kind})


def _ws(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", required=True, help="workspace folder")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: the workspace's)")


def _workspace(args: argparse.Namespace) -> Workspace:
    """The checked ``--study`` first (every command that takes one comes here), then the workspace."""
    from demix_core.workspace.manifest import load_workspace  # numpy

    check_study_name(args.study)
    return load_workspace(args.workspace)


@contextlib.contextmanager
def _create_hint(ws: Workspace, args: argparse.Namespace) -> Iterator[None]:
    """Add the command that creates the study to an unknown-study error."""
    try:
        yield
    except UnknownStudyError as exc:
        storage = f" --storage {args.storage}" if args.storage else ""
        raise UnknownStudyError(f"{exc} with `demix study create --workspace {ws.root} --study {args.study}"
                                f"{storage}`") from None


def _load(args: argparse.Namespace) -> tuple[Workspace, Any]:
    from demix_core.search.study import load_study  # optuna

    ws = _workspace(args)
    with _create_hint(ws, args):
        return ws, load_study(ws, args.study, storage=args.storage)


def run_create(args: argparse.Namespace) -> int:
    """Create a study."""
    from demix_core.search import record
    from demix_core.search.study import create_study  # optuna

    ws = _workspace(args)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    study = create_study(ws, args.study, sampler=args.sampler, storage=args.storage, suite=args.suite,
                         method=args.method, seed=args.seed, n_trials=args.n_trials, tasks=tasks,
                         include_paths=args.include_path, exist_ok=False, proxy=args.proxy)
    attrs = study.user_attrs
    scored = f"tasks {','.join(record.tasks(attrs))}" if tasks else f"suite {record.suite(attrs)}"
    print(f"created study {args.study!r}: objectives {', '.join(study.metric_names or [])} (maximised), "
          f"{scored}, proxy {record.study_proxy(study)} ({record.proxy_from(attrs)}), sampler "
          f"{record.sampler(attrs)}, method {record.method(attrs)}, storage {args.storage or ws.storage_url()}")
    bounds = record.stored_bounds(attrs)
    if bounds is not None:  # created under the workspace's token budget: every trial stays inside it
        ranges = zip(bounds.names, bounds.lo, bounds.hi)
        print("token budget, weights within: " + ", ".join(f"{n} {lo:.3f}..{hi:.3f}" for n, lo, hi in ranges))
    return 0


def run_run(args: argparse.Namespace) -> int:
    """Start workers as separate processes, print progress, wait."""
    from demix_core.search.study import counts, create_study  # optuna

    ws = _workspace(args)
    study = create_study(ws, args.study, sampler=args.sampler, storage=args.storage, n_trials=args.n_trials,
                         proxy=args.proxy)
    start = time.perf_counter()
    before = counts(study).get("COMPLETE", 0)
    from demix_core.search.launch import start_workers

    procs = start_workers(ws.root, args.study, n_trials=args.n_trials, count=args.workers, device=args.device,
                          storage=args.storage, threads=args.threads)
    _wait(procs, study, start)
    elapsed = time.perf_counter() - start
    final = _counts(study)
    if final is None:
        print(f"workers ended after {elapsed:.1f}s; the storage is unreachable now: check it with "
              "`demix study status` once it is back")
        return 1
    done = final.get("COMPLETE", 0) - before
    print(f"{done:,} trials in {elapsed:.1f}s with {args.workers} worker(s): {60 * done / elapsed:.1f} trials/minute")
    return 0 if all(p.returncode == 0 for p in procs) else 1


def _wait(procs: list[subprocess.Popen[bytes]], study: Any, start: float) -> None:
    """Wait for the workers, printing the trial counts every 2 s; Ctrl-C stops them."""
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
    from demix_core.mixing.mixture import Mixture
    from demix_core.search import record
    from demix_core.search.study import counts
    from demix_core.search.trials import trials_frame

    ws, study = _load(args)
    c = counts(study)
    proxy = record.study_proxy(study)
    front = [{"number": t.number, "mixture": record.mixture(t),
              "values": dict(zip(study.metric_names or [], t.values or []))} for t in study.best_trials]
    if args.json:
        print(json.dumps({"study": args.study, "counts": c, "objectives": study.metric_names, "proxy": proxy,
                          "pareto_front": front}, indent=2))
        return 0
    print(f"study {args.study}: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(c.items())))
    came = record.proxy_from(study.user_attrs)
    print(f"proxy: {proxy}" + (f" ({came})" if came else ""))
    print(f"objectives (maximised): {', '.join(study.metric_names or [])}")
    frame = trials_frame(study)
    if len(frame):
        print("sources: " + ", ".join(f"{k} {int(v)}" for k, v in frame["source"].value_counts().items()))
    print(f"Pareto front ({len(front):,} trials):")
    for f in front:
        mix = Mixture.from_mapping(ws.component_names, f["mixture"] or {}).label() if f["mixture"] else ""
        print(f"  #{f['number']:<4} {mix:<50} " + " ".join(f"{k}={v:.4f}" for k, v in f["values"].items()))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write trials to CSV or JSON (atomically)."""
    from demix_core.search.trials import trials_frame

    check_file_output(args.out, force=args.force)
    _, study = _load(args)
    frame = trials_frame(study)
    text = frame.to_csv(index=False) if args.format == "csv" else frame.to_json(orient="records", indent=2,
                                                                                  date_format="iso")
    atomic_write_text(args.out, text, force=args.force)
    print(f"wrote {len(frame):,} trials to {args.out}")
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
    from demix_core.background.launch import enter_background

    enter_background()  # a dashboard's worker: nice 10, set before torch starts its threads
    from demix_core.search.worker import Worker  # torch, optuna

    ws = _workspace(args)
    with _create_hint(ws, args):
        worker = Worker(ws, args.study, storage=args.storage, device=args.device, suite=args.suite)
    print(f"worker {worker.id} on {worker.engine.device}: study {args.study}, suite {worker.engine.suite.name}",
          flush=True)
    done = worker.run(args.n_trials, timeout=args.timeout)
    print(f"worker {worker.id} finished {done:,} trials", flush=True)
    return 1 if worker.failures >= worker.MAX_CONSECUTIVE_FAILURES else 0
