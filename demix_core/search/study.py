"""Optuna studies over merge ratios: one objective per domain (maximised), trials are mixtures.

The Optuna storage is the one record of trials: workers write them, the dashboard reads them and
enqueues user-chosen mixtures, exports read them. A study's own settings (components, domains, suite,
method, sampler) live in its user attributes, so any process that opens the storage can work on it,
and the same URL opens in ``optuna-dashboard``.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd

from demix_core.errors import StudyError, UnknownStudyError, near_matches
from demix_core.io.names import check_study_name
from demix_core.mixing.mixture import Mixture, param_name, params_from_mixture
from demix_core.search.resilience import ResilientRDBStorage
from demix_core.workspace.manifest import Workspace

if TYPE_CHECKING:
    from demix_core.mixing.bounds import Bounds

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 6
SAMPLERS = ("tpe", "nsga2", "gp", "random", "demix", "front")
# Samplers take numpy seeds (< 2**32); each worker adds up to 10,000 to the study's seed.
MAX_SEED = 2**32 - 1 - 10_000

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``sqlite:///``, ``postgresql://``, ``mysql://`` or ``journal:PATH`` URLs.

    RDB storages get heartbeats, so a trial whose worker died is failed and retried by another worker.

    Raises:
        StudyError: The URL is malformed or the server cannot be reached.
    """
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            path = url[len("journal:"):]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(path))
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return ResilientRDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
            engine_kwargs=_engine_kwargs(url),
        )
    except Exception as exc:  # sqlalchemy / driver errors of many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise StudyError(f"cannot open storage {url} ({first[:200]}); check the URL and that the server is "
                         "running") from None


def _engine_kwargs(url: str) -> dict[str, Any] | None:
    """Server databases: check pooled connections before use, and give up connecting after 10 s (a cut
    network would otherwise hang a worker in connect instead of letting it retry)."""
    if url.startswith("sqlite"):
        return None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def storage_url(ws: Workspace, storage: str | None = None) -> str:
    """The storage URL to use: an explicit one, else the workspace's."""
    return storage or ws.storage_url()


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Existing study names in a storage."""
    return sorted(s.study_name for s in storage.get_all_studies())


def create_study(ws: Workspace, name: str, *, sampler: str | None = None, storage: str | None = None,
                 suite: str | None = None, method: str | None = None, seed: int | None = None,
                 n_trials: int | None = None, tasks: Sequence[str] | None = None,
                 include_paths: Sequence[str | os.PathLike[str]] = (), exist_ok: bool = True,
                 proxy: str | None = None) -> optuna.Study:
    """Create (or open, with ``exist_ok``) a study for a workspace.

    Args:
        ws: The workspace.
        name: Study name.
        sampler: One of ``tpe``, ``nsga2``, ``gp``, ``random``, ``demix`` (the paper's rounds), ``front``
            (simplex design + Scheffé surrogate, fills the Pareto front fastest). Default: the
            workspace's ``defaults``, else ``front``.
        storage: Storage URL (default: the workspace's).
        suite: Suite the workers score with, ``quick`` or ``paper`` (default: the workspace's).
        method: Merge method (default: the workspace's ``defaults``, else ``linear``).
        seed: Sampler seed, each worker offsets it (default: the workspace's ``defaults``, else 0).
        n_trials: The intended budget (scales the DeMix sampler's rounds).
        tasks: lm-eval task names scored instead of a suite; each task's domain (one objective each)
            is ``metadata.domain`` in its YAML, else the task's name.
        include_paths: Folders of the user's lm-eval task YAML, for ``tasks``.
        exist_ok: Open an existing study instead of failing.
        proxy: The proxy kind its workers score, ``merge`` or ``ensemble`` (default: :func:`default_proxy`).

    Raises:
        StudyNameError: ``name`` is not a valid study name (see :mod:`demix_core.io.names`).
        StudyError: Unknown sampler or suite, unreachable storage, or the study exists and not ``exist_ok``.
        EvaluationError: A task is unknown or cannot be loaded.
    """
    check_study_name(name)
    sampler = sampler or ws.study_default("sampler")
    method = method or ws.study_default("method")
    seed = ws.study_default("seed") if seed is None else seed
    _check_settings(str(sampler), int(seed), n_trials)
    from demix_core.merge import get_method

    get_method(method)  # an unknown method fails here, before anything is stored
    suite = suite or ws.suite
    proxy, proxy_from = default_proxy(ws, suite if not tasks else ",".join(tasks), proxy)
    attrs: dict[str, Any] = {"components": list(ws.component_names), "suite": suite, "method": method,
                             "sampler": sampler, "seed": seed, "workspace": str(ws.root), "n_trials": n_trials,
                             "proxy": proxy, "proxy_from": proxy_from}
    if tasks:
        attrs["tasks"] = ",".join(tasks)
        attrs["include_paths"] = [str(Path(p).resolve()) for p in include_paths]
        attrs["domains"] = task_domains(tasks, include_paths)
    else:
        attrs["domains"] = _domains(ws, suite)
    if not ws.budget.empty:  # the feasible set, fixed for the study's life (BudgetError if it is empty)
        from demix_core.workspace.feasible import resolve_bounds

        attrs["bounds"] = resolve_bounds(ws).to_json()
    # Every worker builds the sampler from these settings: build it once now, so a study that no worker
    # could open is never stored.
    make_sampler(sampler, ws, attrs, seed=seed)
    st = open_storage(storage_url(ws, storage))
    if name in study_names(st):
        if not exist_ok:
            raise StudyError(f"study {name!r} already exists; choose another name")
        return load_study(ws, name, storage=storage)
    study = optuna.create_study(study_name=name, storage=st, directions=["maximize"] * len(attrs["domains"]))
    study.set_metric_names(attrs["domains"])
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    return load_study(ws, name, storage=storage)


def default_proxy(ws: Workspace, suite: str, proxy: str | None = None) -> tuple[str, str]:
    """A new study's proxy kind and where it came from: the flag (``proxy``), else the manifest's
    ``defaults.proxy``, else the pick that ``demix validate`` recorded (this suite's, else the newest), else
    ``merge``.

    Returns:
        (kind, source): source is ``flag``, ``manifest``, ``validation (<suite>)`` or ``default``.

    Raises:
        ConfigError: ``proxy`` is not a proxy kind.
    """
    from demix_core.engine import PROXY_KINDS, check_proxy_kind
    from demix_core.workspace.records import validated_proxy

    if proxy is not None:
        return check_proxy_kind(proxy), "flag"
    if "proxy" in ws.defaults:
        return check_proxy_kind(str(ws.defaults["proxy"])), "manifest"
    picked = validated_proxy(ws, suite)
    if picked is not None and picked[0] in PROXY_KINDS:
        return picked[0], f"validation ({picked[1]})"
    return "merge", "default"


def study_proxy(study: optuna.Study) -> str:
    """The proxy kind a study's workers score (studies made before proxy kinds existed: ``merge``)."""
    return str(study.user_attrs.get("proxy") or "merge")


def _check_settings(sampler: str, seed: int, n_trials: int | None) -> None:
    if sampler not in SAMPLERS:
        raise StudyError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    if not 0 <= seed <= MAX_SEED:
        raise StudyError(f"seed {seed} is out of range; give a seed from 0 to {MAX_SEED}")
    if n_trials is not None and n_trials < 1:
        raise StudyError(f"n_trials {n_trials} is not allowed; give 1 or more (or leave it out)")


def task_domains(tasks: Sequence[str], include_paths: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """The objectives of a study over lm-eval tasks: each task's domain, in a stable order.

    Loads the tasks once (so a study no worker could score is never stored).

    Raises:
        EvaluationError: A task is unknown or cannot be loaded.
    """
    from demix_core.evaluate.lmeval import load_tasks
    from demix_core.evaluate.suite import task_domain

    loaded = load_tasks(list(tasks), include_paths=include_paths)
    return list(dict.fromkeys(task_domain(t, task) for t, task in loaded.items()))


def _domains(ws: Workspace, suite: str) -> list[str]:
    """The objectives a suite will report for this workspace (in a stable order)."""
    if suite == "quick":
        return list(dict.fromkeys(d.domain for d in ws.datasets))
    if suite == "paper":
        from demix_core.evaluate.benchdata import paper_domains

        return list(dict.fromkeys(paper_domains().values()))
    raise StudyError(f"unknown suite {suite!r}; use quick or paper, or give lm-eval task names")


def load_study(ws: Workspace, name: str, *, storage: str | None = None, worker_seed: int = 0) -> optuna.Study:
    """Open an existing study with its sampler rebuilt from the study's settings.

    Raises:
        StudyError: Unknown study (the message lists the existing ones) or unreachable storage.
    """
    url = storage_url(ws, storage)
    for scheme in ("sqlite:///", "journal:"):
        if url.startswith(scheme) and not Path(url[len(scheme):]).exists():  # opening it would create it
            raise UnknownStudyError(f"unknown study {name!r}: there is no storage at {url[len(scheme):]} yet; "
                                    "create the study first")
    st = open_storage(url)
    names = study_names(st)
    if name not in names:
        listing = ", ".join(names) if names else "none yet"
        hint = near_matches(name, names) + " or create the study first" if names else "create the study first"
        raise UnknownStudyError(f"unknown study {name!r} in {url} (existing: {listing}); {hint}")
    summary = optuna.load_study(study_name=name, storage=st)
    attrs = summary.user_attrs
    comps = attrs.get("components", [])
    if list(comps) != list(ws.component_names):
        raise StudyError(f"study {name!r} was made for components {comps}, not this workspace's "
                         f"{list(ws.component_names)}; open it with its own workspace")
    try:
        sampler = make_sampler(attrs.get("sampler", "tpe"), ws, attrs, seed=int(attrs.get("seed", 0)) + worker_seed)
    except (TypeError, ValueError) as exc:  # settings stored by an older version without validation
        raise StudyError(f"study {name!r} has unusable sampler settings ({exc}); delete it with "
                         f"`optuna delete-study --study-name {name} --storage {url}` and create it again") from None
    return optuna.load_study(study_name=name, storage=st, sampler=sampler)


def study_bounds(ws: Workspace, attrs: Mapping[str, Any]) -> Bounds:
    """A study's feasible set (its ``bounds`` user attribute, stored at creation from the workspace's budget);
    the plain simplex for a study made without a budget."""
    from demix_core.mixing.bounds import Bounds

    return Bounds.from_json(attrs.get("bounds"), ws.component_names)


def make_sampler(name: str, ws: Workspace, attrs: Mapping[str, Any], *, seed: int) -> optuna.samplers.BaseSampler:
    """Build a sampler by name (the DeMix sampler reads its prior from the workspace).

    Every sampler proposes feasible mixtures only. Optuna's own (``tpe``, ``nsga2``, ``gp``, ``random``) draw
    the raw ``u_i`` and the worker maps each draw onto the study's feasible set
    (:func:`demix_core.mixing.bounds.mixture_from_trial_params`): their ``constraints_func`` would only mark an
    infeasible trial after it was evaluated, wasting it. ``front`` and ``demix`` draw mixtures themselves and
    project them onto the set before proposing (the DeMix prior's caps are the budget's upper bounds).
    """
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=10)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "demix":
        from demix_core.search.samplers import DemixSampler

        return DemixSampler.for_workspace(ws, seed=seed, n_trials=attrs.get("n_trials"),
                                          bounds=study_bounds(ws, attrs))
    if name == "front":
        from demix_core.search.front import FrontSampler

        return FrontSampler(ws.component_names, seed=seed, bounds=study_bounds(ws, attrs))
    raise StudyError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")


def enqueue(study: optuna.Study, mixture: Mixture, *, source: str = "manual") -> None:
    """Queue a chosen mixture; the next free worker evaluates it first.

    Raises:
        BudgetError: The mixture lies outside the study's feasible set (the message names the dataset).
    """
    comps = study.user_attrs.get("components")
    if comps is not None and list(mixture.names) != list(comps):
        mixture = Mixture.from_mapping(comps, mixture.as_dict())
    if study.user_attrs.get("bounds"):
        from demix_core.mixing.bounds import Bounds

        Bounds.from_json(study.user_attrs["bounds"], mixture.names).check(mixture.as_dict())
    study.enqueue_trial(params_from_mixture(mixture), user_attrs={"source": source, "requested": mixture.as_dict()},
                        skip_if_exists=False)


def add_measured_trial(study: optuna.Study, mixture: Mixture, scores: Any, *, merge_seconds: float = 0.0,
                       source: str = "mixer", device: str = "", proxy: str = "merge") -> int:
    """Record a mixture scored outside a worker (the Mixer) as a COMPLETE trial, as a worker records one.

    The trial has the study's parameters (``u_<component>``, which map back to ``mixture``), the domain
    scores as values in the study's objective order, and the worker's user attributes (``mixture``,
    ``benchmarks``, ``domains``, timings, who scored it) with ``source`` set.

    Args:
        study: The study.
        mixture: The mixture scored.
        scores: Its :class:`~demix_core.evaluate.scores.Scores` on the study's suite with the study's method.
        merge_seconds: Merge time of that evaluation.
        source: The trial's ``source`` attribute.
        device: Where it was scored.
        proxy: The proxy kind that gave ``scores`` (recorded, as a worker records its own).

    Returns:
        The new trial's number.

    Raises:
        StudyError: The scores lack one of the study's domains, or come from another proxy kind than the study's.
    """
    if proxy != study_proxy(study):
        raise StudyError(f"the scores come from the {proxy} proxy, but study {study.study_name!r} scores with the "
                         f"{study_proxy(study)} proxy; queue the mixture for a worker instead")
    comps = list(study.user_attrs.get("components") or mixture.names)
    if list(mixture.names) != comps:
        mixture = Mixture.from_mapping(comps, mixture.as_dict())
    domains = list(study.metric_names or study.user_attrs.get("domains", []))
    missing = [d for d in domains if d not in scores.domains]
    if missing:
        raise StudyError(f"the scores have no {', '.join(missing)} score; score the mixture with the study's suite "
                         f"({study.user_attrs.get('suite')}) before adding it to study {study.study_name!r}")
    import socket

    attrs = {"worker": worker_id(), "host": socket.gethostname(), "device": device, "source": source,
             "proxy": proxy, "mixture": mixture.as_dict(), "benchmarks": dict(scores.benchmarks),
             "domains": dict(scores.domains), "merge_s": float(merge_seconds), "eval_s": float(scores.seconds),
             "trial_s": float(merge_seconds) + float(scores.seconds)}
    dist: dict[str, optuna.distributions.BaseDistribution] = {
        p: optuna.distributions.FloatDistribution(0.0, 1.0) for p in param_names(study)}
    trial = optuna.trial.create_trial(params=params_from_mixture(mixture), distributions=dist,
                                      values=[float(scores.domains[d]) for d in domains], user_attrs=attrs)
    study.add_trial(trial)
    mine = [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("worker") == attrs["worker"] and t.user_attrs.get("mixture") == attrs["mixture"]]
    return max(mine)


def _trial_row(t: optuna.trial.FrozenTrial, comps: Sequence[str], domains: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"number": t.number, "state": t.state.name, "source": t.user_attrs.get("source", ""),
                           "worker": t.user_attrs.get("worker", ""), "device": t.user_attrs.get("device", ""),
                           "datetime_complete": t.datetime_complete, "merge_s": t.user_attrs.get("merge_s"),
                           "eval_s": t.user_attrs.get("eval_s")}
    mix = t.user_attrs.get("mixture") or t.user_attrs.get("requested") or {}
    for c in comps:
        row[f"w:{c}"] = mix.get(c)
    for d, v in zip(domains, t.values or [None] * len(domains)):
        row[f"d:{d}"] = v
    for k, v in (t.user_attrs.get("benchmarks") or {}).items():
        row[f"b:{k}"] = v
    return row


def trials_frame(study: optuna.Study, *, states: Sequence[optuna.trial.TrialState] | None = None) -> pd.DataFrame:
    """One row per trial: number, state, source, worker, domain scores, weights, benchmark scores, timings.

    Columns: ``number``, ``state``, ``source``, ``worker``, ``device``, ``datetime_complete``,
    ``d:<domain>``, ``w:<component>``, ``b:<benchmark/metric>``, ``merge_s``, ``eval_s``.
    """
    comps = list(study.user_attrs.get("components", []))
    domains = list(study.metric_names or study.user_attrs.get("domains", []))
    return pd.DataFrame([_trial_row(t, comps, domains) for t in study.get_trials(deepcopy=False, states=states)])


class TrialTable:
    """A study's trial table kept up to date incrementally, for views that redraw every few seconds.

    It holds one open study, so Optuna's storage cache reads only new and unfinished trials from the
    database on each refresh; rows of finished trials are built once. ``frame()`` returns the same
    DataFrame object until a trial is added or changes state. Thread-safe (one table may serve every
    session of a dashboard).
    """

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self._comps = list(study.user_attrs.get("components", []))
        self._domains = list(study.metric_names or study.user_attrs.get("domains", []))
        self._finished: dict[int, dict[str, Any]] = {}
        self._frame: pd.DataFrame | None = None
        self._key: tuple[Any, ...] = ()
        self._lock = threading.Lock()

    def frame(self) -> pd.DataFrame:
        """The current table (same columns as :func:`trials_frame`)."""
        with self._lock:
            trials = self.study.get_trials(deepcopy=False)
            live: list[dict[str, Any]] = []
            for t in trials:
                if t.state.is_finished():
                    if t.number not in self._finished:
                        self._finished[t.number] = _trial_row(t, self._comps, self._domains)
                else:
                    live.append(_trial_row(t, self._comps, self._domains))
            key = (len(self._finished), tuple((r["number"], r["state"]) for r in live))
            if self._frame is None or key != self._key:
                rows = sorted([*self._finished.values(), *live], key=lambda r: r["number"])
                self._frame, self._key = pd.DataFrame(rows), key
            return self._frame


def param_names(study: optuna.Study) -> list[str]:
    """The Optuna parameter name of each component."""
    return [param_name(c) for c in study.user_attrs.get("components", [])]


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def worker_id() -> str:
    """``host:pid`` of this process."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
