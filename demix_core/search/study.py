"""Optuna studies over merge ratios: one objective per domain (maximised), trials are mixtures.

The Optuna storage is the one record of trials: workers write them, the dashboard reads them and
enqueues user-chosen mixtures, exports read them. A study's own settings (components, domains, suite,
method, sampler) live in its user attributes (:mod:`demix_core.search.record`), so any process that opens
the storage (:mod:`demix_core.search.storage`) can work on it, and the same URL opens in ``optuna-dashboard``.
The trial table is :mod:`demix_core.search.trials`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from demix_core.errors import StudyError, UnknownStudyError, near_matches
from demix_core.io.names import check_study_name
from demix_core.mixing.mixture import Mixture, param_name, params_from_mixture
from demix_core.search import record, samplers
from demix_core.search.storage import open_storage, storage_url, study_names
from demix_core.workspace.manifest import Workspace

# Samplers take numpy seeds (< 2**32); each worker adds up to 10,000 to the study's seed.
MAX_SEED = 2**32 - 1 - 10_000


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
        WorkspaceError: A table workspace (its studies are imported: :mod:`demix_core.runs`).
    """
    check_study_name(name)
    ws.require_checkpoints("a study of proxies")
    attrs = _settings(ws, sampler=sampler, suite=suite, method=method, seed=seed, n_trials=n_trials, tasks=tasks,
                      include_paths=include_paths, proxy=proxy)
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


def _settings(ws: Workspace, *, sampler: str | None, suite: str | None, method: str | None, seed: int | None,
              n_trials: int | None, tasks: Sequence[str] | None, include_paths: Sequence[str | os.PathLike[str]],
              proxy: str | None) -> dict[str, Any]:
    """A new study's settings (its user attributes, :mod:`demix_core.search.record`), defaults filled in and
    every one checked before anything is stored."""
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
    samplers.get(sampler).make(ws, attrs, seed=seed)
    return attrs


def default_proxy(ws: Workspace, suite: str, proxy: str | None = None) -> tuple[str, str]:
    """A new study's proxy kind and where it came from: the flag (``proxy``), else the manifest's
    ``defaults.proxy``, else the pick that ``demix validate`` recorded (this suite's, else the newest), else
    ``merge``.

    Returns:
        (kind, source): source is ``flag``, ``manifest``, ``validation (<suite>)`` or ``default``.

    Raises:
        ConfigError: ``proxy`` is not a proxy kind.
    """
    from demix_core.proxy import get_kind, kind_names
    from demix_core.workspace.records import validated_proxy

    if proxy is not None:
        return get_kind(proxy).name, "flag"
    if "proxy" in ws.defaults:
        return get_kind(str(ws.defaults["proxy"])).name, "manifest"
    picked = validated_proxy(ws, suite)
    if picked is not None and picked[0] in kind_names():
        return picked[0], f"validation ({picked[1]})"
    return record.DEFAULT_PROXY, "default"


def _check_settings(sampler: str, seed: int, n_trials: int | None) -> None:
    samplers.get(sampler)  # an unknown sampler: StudyError naming the near matches
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
    comps = record.components(attrs)
    if comps != list(ws.component_names):
        raise StudyError(f"study {name!r} was made for components {comps}, not this workspace's "
                         f"{list(ws.component_names)}; open it with its own workspace")
    try:
        sampler = samplers.get(record.sampler(attrs)).make(ws, attrs, seed=int(record.seed(attrs)) + worker_seed)
    except (TypeError, ValueError) as exc:  # settings stored by an older version without validation
        raise StudyError(f"study {name!r} has unusable sampler settings ({exc}); delete it with "
                         f"`optuna delete-study --study-name {name} --storage {url}` and create it again") from None
    return optuna.load_study(study_name=name, storage=st, sampler=sampler)


def enqueue(study: optuna.Study, mixture: Mixture, *, source: str = "manual") -> None:
    """Queue a chosen mixture; the next free worker evaluates it first.

    Raises:
        BudgetError: The mixture lies outside the study's feasible set (the message names the dataset).
    """
    comps = record.components(study.user_attrs)
    if comps and list(mixture.names) != comps:
        mixture = Mixture.from_mapping(comps, mixture.as_dict())
    bounds = record.stored_bounds(study.user_attrs)
    if bounds is not None:
        bounds.check(mixture.as_dict())
    study.enqueue_trial(params_from_mixture(mixture), user_attrs=record.request(mixture, source=source),
                        skip_if_exists=False)


def add_measured_trial(study: optuna.Study, mixture: Mixture, scores: Any, *, merge_seconds: float = 0.0,
                       source: str = "mixer", device: str = "", proxy: str = record.DEFAULT_PROXY) -> int:
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
    kind = record.study_proxy(study)
    if proxy != kind:
        raise StudyError(f"the scores come from the {proxy} proxy, but study {study.study_name!r} scores with the "
                         f"{kind} proxy; queue the mixture for a worker instead")
    comps = record.components(study.user_attrs) or list(mixture.names)
    if list(mixture.names) != comps:
        mixture = Mixture.from_mapping(comps, mixture.as_dict())
    domains = record.domains(study)
    missing = [d for d in domains if d not in scores.domains]
    if missing:
        raise StudyError(f"the scores have no {', '.join(missing)} score; score the mixture with the study's suite "
                         f"({record.suite(study.user_attrs)}) before adding it to study {study.study_name!r}")
    me = record.worker_id()
    attrs = {**record.runner(worker=me, device=device), **record.source_attrs(source),
             **record.result(mixture, proxy=proxy, scores=scores, merge_s=merge_seconds,
                             trial_s=float(merge_seconds) + float(scores.seconds))}
    dist: dict[str, optuna.distributions.BaseDistribution] = {
        p: optuna.distributions.FloatDistribution(0.0, 1.0) for p in param_names(study)}
    trial = optuna.trial.create_trial(params=params_from_mixture(mixture), distributions=dist,
                                      values=[float(scores.domains[d]) for d in domains], user_attrs=attrs)
    study.add_trial(trial)
    mine = [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if record.worker(t) == me and record.mixture(t) == mixture.as_dict()]
    return max(mine)


def param_names(study: optuna.Study) -> list[str]:
    """The Optuna parameter name of each component."""
    return [param_name(c) for c in record.components(study.user_attrs)]


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out
