"""The trial record: what a study and its trials carry in their Optuna user attributes.

One owner for the stored keys, the defaults an older study is read with, the one way a trial's attributes are
written (by a worker, and by the Mixer through :func:`demix_core.search.study.add_measured_trial`) and every
reading of them (samplers, the recommendation, the trial table, validation, the views). The keys are the
format of every stored study: never rename one.

A trial's attributes: ``source`` (who asked for it: the sampler's name, ``manual``, ``recommendation``,
``mixer``, ``surplus`` ...), ``worker`` (``host:pid``), ``host``, ``device``, ``requested`` (an enqueued
trial's mixture), ``mixture`` (the mixture scored), ``proxy`` (the proxy kind that scored it), ``benchmarks``
(``task/metric`` -> score), ``domains`` (domain -> score), ``merge_s``, ``eval_s``, ``trial_s`` (seconds).

A study's settings, written once when it is created: ``components``, ``domains``, ``suite``, ``tasks``
(comma-separated), ``include_paths``, ``method``, ``sampler``, ``seed``, ``workspace``, ``n_trials``,
``proxy``, ``proxy_from``, ``bounds`` (the feasible set, :meth:`demix_core.mixing.bounds.Bounds.to_json`).
Readers of settings take the study's ``user_attrs`` (the samplers are built from them before the study is
stored); the readers that also need the objective order take the study.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from demix_core.engine import Measured
    from demix_core.evaluate.scores import Scores
    from demix_core.mixing.bounds import Bounds
    from demix_core.mixing.mixture import Mixture
    from demix_core.workspace.manifest import Workspace

# A trial's keys.
SOURCE = "source"
WORKER = "worker"
HOST = "host"
DEVICE = "device"
REQUESTED = "requested"
MIXTURE = "mixture"
PROXY = "proxy"
BENCHMARKS = "benchmarks"
DOMAINS = "domains"
MERGE_S = "merge_s"
EVAL_S = "eval_s"
TRIAL_S = "trial_s"
RUN = "run"  # an imported run's key in its table (demix import-runs)
FILE = "file"  # the table an imported run came from

# What a study stored without a setting means (studies made before the setting existed).
DEFAULT_METHOD = "linear"
DEFAULT_PROXY = "merge"
DEFAULT_SAMPLER = "tpe"
DEFAULT_SEED = 0

SURPLUS = "surplus"  # the source of a sampled trial past the global budget, pruned unevaluated


# --- writing a trial ---------------------------------------------------------------------------------


def worker_id() -> str:
    """``host:pid`` of this process (a trial's ``worker``)."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def runner(*, worker: str, device: str) -> dict[str, Any]:
    """Who scores a trial: ``worker``, ``host``, ``device`` (a worker writes them first, so a RUNNING trial
    shows its worker)."""
    import socket

    return {WORKER: worker, HOST: socket.gethostname(), DEVICE: device}


def result(mixture: Mixture, *, proxy: str, scores: Scores, merge_s: float, trial_s: float) -> dict[str, Any]:
    """What scoring a trial gave: the mixture scored, the proxy kind, every benchmark and domain score, timings.

    Args:
        mixture: The mixture scored.
        proxy: The proxy kind that scored it.
        scores: Its scores.
        merge_s: Merge time.
        trial_s: Wall time of the whole trial.
    """
    return {MIXTURE: mixture.as_dict(), PROXY: proxy, BENCHMARKS: dict(scores.benchmarks),
            DOMAINS: dict(scores.domains), MERGE_S: float(merge_s), EVAL_S: float(scores.seconds),
            TRIAL_S: float(trial_s)}


def request(mixture: Mixture, *, source: str) -> dict[str, Any]:
    """An enqueued trial's attributes: who asked (``source``) and the mixture asked for (``requested``)."""
    return {SOURCE: source, REQUESTED: mixture.as_dict()}


def write(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Write attributes (from :func:`runner`, :func:`result`, :func:`source_attrs`) to a running trial."""
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def imported_run(mixture: Mixture, *, run: str, file: str, source: str, proxy: str,
                 domains: Mapping[str, float], benchmarks: Mapping[str, float]) -> dict[str, Any]:
    """What an imported run (a row of a table of past runs) records: its key and file, and its scores."""
    return {RUN: run, FILE: file, SOURCE: source, WORKER: source, PROXY: proxy, MIXTURE: mixture.as_dict(),
            DOMAINS: dict(domains), BENCHMARKS: dict(benchmarks)}


def run_key(trial: optuna.trial.FrozenTrial) -> str | None:
    """An imported run's key in its table (None for a trial that was not imported)."""
    value = trial.user_attrs.get(RUN)
    return None if value is None else str(value)


def run_file(trial: optuna.trial.FrozenTrial) -> str | None:
    """The table an imported run came from."""
    value = trial.user_attrs.get(FILE)
    return None if value is None else str(value)


def source_attrs(source: str) -> dict[str, Any]:
    """The ``source`` attribute alone (a worker's sampled trial, a pruned surplus trial, a measured trial)."""
    return {SOURCE: source}


# --- reading a trial ---------------------------------------------------------------------------------


def mixture(trial: optuna.trial.FrozenTrial) -> dict[str, float] | None:
    """The mixture a trial scored (None before it is scored)."""
    return trial.user_attrs.get(MIXTURE) or None


def shown_mixture(trial: optuna.trial.FrozenTrial) -> dict[str, float] | None:
    """The mixture scored, else the one an enqueued trial asks for, else None."""
    return trial.user_attrs.get(MIXTURE) or trial.user_attrs.get(REQUESTED) or None


def has_source(trial: optuna.trial.FrozenTrial | optuna.Trial) -> bool:
    """Whether a trial's source is recorded yet (an enqueued trial's is, from :func:`request`)."""
    return SOURCE in trial.user_attrs


def source(trial: optuna.trial.FrozenTrial | optuna.Trial, default: str | None = None) -> str | None:
    """Who asked for a trial (``default`` when not recorded)."""
    return trial.user_attrs.get(SOURCE, default)


def worker(trial: optuna.trial.FrozenTrial) -> str:
    """The ``host:pid`` that scores or scored a trial ("" when unknown)."""
    return str(trial.user_attrs.get(WORKER, ""))


def device(trial: optuna.trial.FrozenTrial) -> str:
    """Where a trial was scored ("" when unknown)."""
    return str(trial.user_attrs.get(DEVICE, ""))


def seconds(trial: optuna.trial.FrozenTrial) -> tuple[float | None, float | None]:
    """(merge, evaluation) seconds of a scored trial (None when not recorded)."""
    return trial.user_attrs.get(MERGE_S), trial.user_attrs.get(EVAL_S)


def benchmarks(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    """A scored trial's per-benchmark scores, ``task/metric`` -> value (empty before it is scored)."""
    return dict(trial.user_attrs.get(BENCHMARKS) or {})


def measured_results(trials: Iterable[Any]) -> list[Measured]:
    """The scores of the complete trials that carry a mixture, benchmarks and domains, as plain data."""
    from demix_core.engine import Measured

    out = []
    for t in trials:
        attrs = getattr(t, "user_attrs", {})
        complete = getattr(getattr(t, "state", None), "name", "") == "COMPLETE"
        if not complete or not {MIXTURE, BENCHMARKS, DOMAINS} <= set(attrs):
            continue
        out.append(Measured(dict(attrs[MIXTURE]), dict(attrs[BENCHMARKS]), dict(attrs[DOMAINS]),
                            float(attrs.get(EVAL_S, 0.0))))
    return out


def trial_proxy(trial: optuna.trial.FrozenTrial, study: optuna.Study) -> str:
    """The proxy kind that scored a trial (its ``proxy`` attribute, else the study's, else ``merge``)."""
    return str(trial.user_attrs.get(PROXY) or study_proxy(study))


# --- reading a study's settings ----------------------------------------------------------------------


def components(attrs: Mapping[str, Any]) -> list[str]:
    """The study's component names, in order."""
    return list(attrs.get("components", []))


def domains(study: optuna.Study) -> list[str]:
    """The study's objectives, in order."""
    return list(study.metric_names or study.user_attrs.get("domains", []))


def method(attrs: Mapping[str, Any]) -> str:
    """The study's merge method."""
    return str(attrs.get("method", DEFAULT_METHOD))


def study_proxy(study: optuna.Study) -> str:
    """The proxy kind a study's workers score (studies made before proxy kinds existed: ``merge``)."""
    return str(study.user_attrs.get("proxy") or DEFAULT_PROXY)


def proxy_from(attrs: Mapping[str, Any]) -> str:
    """Where the study's proxy kind came from (``flag``, ``manifest``, ``validation (...)``, ``default``; ""
    for older studies)."""
    return str(attrs.get("proxy_from") or "")


def suite(attrs: Mapping[str, Any]) -> str | None:
    """The suite the study's workers score with (``quick``, ``paper``; None when unknown)."""
    return attrs.get("suite")


def tasks(attrs: Mapping[str, Any]) -> list[str]:
    """The lm-eval tasks the study scores instead of a suite (empty for a suite's study)."""
    stored = attrs.get("tasks")
    return str(stored).split(",") if stored else []


def include_paths(attrs: Mapping[str, Any]) -> list[str]:
    """Folders of the user's lm-eval task YAML, for the study's tasks."""
    return list(attrs.get("include_paths") or [])


def sampler(attrs: Mapping[str, Any]) -> str:
    """The study's sampler name."""
    return str(attrs.get("sampler", DEFAULT_SAMPLER))


def seed(attrs: Mapping[str, Any]) -> Any:
    """The study's sampler seed, as stored (checked when the sampler is built)."""
    return attrs.get("seed", DEFAULT_SEED)


def n_trials(attrs: Mapping[str, Any]) -> int | None:
    """The study's intended budget (None when not given)."""
    return attrs.get("n_trials")


def stored_bounds(attrs: Mapping[str, Any]) -> Bounds | None:
    """The study's feasible set, or None for a study made without a token budget."""
    if not attrs.get("bounds"):
        return None
    from demix_core.mixing.bounds import Bounds

    return Bounds.from_json(attrs["bounds"], components(attrs))


def study_bounds(ws: Workspace, attrs: Mapping[str, Any]) -> Bounds:
    """A study's feasible set (its ``bounds``, stored at creation from the workspace's budget); the plain simplex
    for a study made without a budget."""
    from demix_core.mixing.bounds import Bounds

    return Bounds.from_json(attrs.get("bounds"), ws.component_names)
