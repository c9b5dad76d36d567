"""A table study: how an imported run sits in an Optuna study, and how it is read back.

A *table study* is an ordinary study in the workspace's storage: one parameter ``u_<domain>`` per domain (from
:func:`~demix_core.mixing.mixture.params_from_mixture`, as every trial), one maximised objective per chosen metric
or family, the usual settings (:mod:`demix_core.search.record`) and a ``table`` user attribute holding the import
settings (:class:`TableSettings`). Each run is one COMPLETE trial whose values are the objectives *oriented*
(higher is better: a lower-is-better metric negated, as merged studies store negated bits per byte), with the trial
record's attributes (``source`` ``import``, ``worker`` ``import``, ``proxy`` ``table``, ``mixture``, ``domains``:
{objective: oriented value}, ``benchmarks``: {``metric/<name>``: raw score as the table wrote it}) and two of its
own, owned here: ``run`` (the run's key) and ``file`` (the mixtures file it came from). So the study's readers
(trial tables, Pareto fronts, the predictor, ``demix recommend``) work on it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from demix_core.errors import StudyError
from demix_core.io.names import check_study_name
from demix_core.mixing.mixture import Mixture, param_name, params_from_mixture
from demix_core.runs.objectives import Objectives
from demix_core.runs.tables import SCORE_PREFIX, Run
from demix_core.search import record
from demix_core.search.storage import open_storage, storage_url, study_names
from demix_core.search.study import load_study
from demix_core.workspace.manifest import Workspace

SOURCE = "import"  # the ``source`` (and ``worker``) of an imported trial
PROXY = "table"  # the ``proxy`` of a table study and its trials: measured runs, not a proxy model
SUITE = "table"
TABLE = "table"  # a study's import settings
UNIT = "negated if lower is better"  # the unit of a table study's objectives, on figures' axes


def score_key(metric: str) -> str:
    """The ``benchmarks`` key of a metric's raw score: ``metric/<name>``."""
    return SCORE_PREFIX + metric


@dataclass(frozen=True)
class TableSettings:
    """What a table study was imported with: the key column, the metrics, the objectives and directions."""

    key: str
    metrics: tuple[str, ...]
    objectives: Objectives

    def to_attr(self) -> dict[str, Any]:
        """The study's ``table`` user attribute."""
        return {"key": self.key, "metrics": list(self.metrics), "higher_is_better": dict(self.objectives.higher),
                "objectives": {k: list(v) for k, v in self.objectives.groups.items()}}

    @classmethod
    def from_attr(cls, data: Mapping[str, Any]) -> TableSettings:
        """Read the ``table`` user attribute back."""
        groups = {str(k): tuple(str(m) for m in v) for k, v in dict(data["objectives"]).items()}
        higher = {str(k): bool(v) for k, v in dict(data["higher_is_better"]).items()}
        return cls(str(data["key"]), tuple(str(m) for m in data["metrics"]), Objectives(groups, higher))


def table_settings(study: optuna.Study) -> TableSettings | None:
    """A table study's settings; None for a study of merged or ensembled proxies."""
    data = study.user_attrs.get(TABLE)
    return TableSettings.from_attr(data) if isinstance(data, dict) else None


def create_table_study(ws: Workspace, name: str, settings: TableSettings, *,
                       storage: str | None = None) -> optuna.Study:
    """Create an empty table study (its runs are added with :func:`run_trial`).

    Raises:
        StudyNameError: ``name`` is not a valid study name.
        StudyError: The storage cannot be opened, or the study exists.
    """
    check_study_name(name)
    st = open_storage(storage_url(ws, storage))
    if name in study_names(st):
        raise StudyError(f"study {name!r} already exists; import into it again or choose another name")
    objectives = list(settings.objectives.groups)
    study = optuna.create_study(study_name=name, storage=st, directions=["maximize"] * len(objectives))
    study.set_metric_names(objectives)
    attrs: dict[str, Any] = {"components": list(ws.component_names), "domains": objectives, "suite": SUITE,
                             "method": "linear", "sampler": "random", "seed": 0, "workspace": str(ws.root),
                             "n_trials": None, "proxy": PROXY, "proxy_from": SOURCE, TABLE: settings.to_attr()}
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    return load_study(ws, name, storage=storage)


def run_trial(settings: TableSettings, names: Sequence[str], run: Run, file: str) -> optuna.trial.FrozenTrial | str:
    """The COMPLETE trial that records ``run``, or the first objective metric the run has no score for.

    Args:
        settings: The study's settings.
        names: The workspace's domains (the trial's parameters, in order).
        run: The run, its weights renormalised.
        file: The mixtures file it came from (a record).
    """
    values = settings.objectives.values(run.scores)
    if isinstance(values, str):
        return values
    mixture = Mixture.from_mapping(names, run.weights)
    attrs = record.imported_run(mixture, run=run.key, file=file, source=SOURCE, proxy=PROXY, domains=values,
                                benchmarks={score_key(m): v for m, v in run.scores.items()})
    dist: dict[str, optuna.distributions.BaseDistribution] = {
        param_name(n): optuna.distributions.FloatDistribution(0.0, 1.0) for n in names}
    return optuna.trial.create_trial(params=params_from_mixture(mixture), distributions=dist,
                                     values=list(values.values()), user_attrs=attrs)


def imported(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    """Run key -> its trial, for every run imported into ``study``."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {key: t for t in done if record.source(t) == SOURCE and (key := record.run_key(t)) is not None}


def raw_scores(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    """An imported trial's raw scores, by metric name."""
    return {k[len(SCORE_PREFIX):]: float(v) for k, v in record.benchmarks(trial).items() if k.startswith(SCORE_PREFIX)}


def oriented_metrics(study: optuna.Study, metrics: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n, K) weights and {metric: (n,) oriented scores} of the imported runs that have every one of ``metrics``.

    Raises:
        StudyError: ``study`` is not a table study.
    """
    settings = table_settings(study)
    if settings is None:
        raise StudyError(f"study {study.study_name!r} holds no imported runs; give a study made by "
                         "`demix import-runs`")
    names = record.components(study.user_attrs)
    rows = [(record.mixture(t) or {}, raw_scores(t)) for t in imported(study).values()]
    rows = [(mix, s) for mix, s in rows if all(m in s for m in metrics)]
    x = np.array([[float(mix.get(n, 0.0)) for n in names] for mix, _ in rows]).reshape(len(rows), len(names))
    y = {m: np.array([settings.objectives.orient(m, s[m]) for _, s in rows]) for m in metrics}
    return x, y
