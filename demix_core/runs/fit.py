"""The predictor fitted on a table study, read in the table's own terms: what the Mixer and Recommend pages of a
table workspace show.

:meth:`TableFit.fit` fits :class:`~demix_core.search.predictor.Predictor` on the study's runs as ``demix recommend``
does (the same runs, folds and seed), on every metric's raw score ``metric/<name>`` and every objective that averages
a family of metrics (oriented); an objective that is one metric is that metric's prediction, oriented. Per metric
(and family) it keeps the direction, the out-of-fold Spearman with its :func:`~demix_core.runs.advice.fit_label`, and
the out-of-fold RMS error, which the Mixer shows as the prediction's ± spread. :meth:`TableFit.predict` is one
regressor call per target on one row: the Mixer calls it at every slider move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import optuna

from demix_core.errors import StudyError
from demix_core.runs.advice import fit_label
from demix_core.runs.table_study import TableSettings, score_key, table_settings
from demix_core.search import record
from demix_core.search.predictor import Predictor
from demix_core.search.recommend import training_data


@dataclass(frozen=True)
class TargetFit:
    """How the predictor fits one metric (or one family objective) of a table study.

    Attributes:
        name: The metric as the table names it, or the family objective's name.
        key: The predictor's target: ``metric/<name>`` (a raw score) or the objective (oriented).
        higher: Whether higher is better (a family objective is oriented: always True).
        spearman: Out-of-fold Spearman of the fit.
        error: Out-of-fold RMS error, in the target's units.
        family: Whether this is an objective averaging a family of metrics (oriented), not a metric.
    """

    name: str
    key: str
    higher: bool
    spearman: float
    error: float
    family: bool = False

    @property
    def label(self) -> str:
        """How far to trust the fit, in a word (:func:`~demix_core.runs.advice.fit_label`)."""
        return fit_label(self.spearman)

    @property
    def direction(self) -> str:
        """``higher is better`` or ``lower is better`` (a family: the mean of its oriented metrics)."""
        if self.family:
            return "higher is better (mean of its metrics, each oriented)"
        return "higher is better" if self.higher else "lower is better"


@dataclass
class TableFit:
    """The predictor fitted on a table study's runs, with each metric's fit.

    Attributes:
        study: The study's name.
        names: The domains, in the order of the predictor's weights.
        objectives: The study's objectives (oriented: higher is better).
        targets: The metrics in table order, then the objectives that average a family.
        predictor: The fitted predictor.
        runs: How many runs it was fitted on.
        measured: Target -> the runs' scores (``metric/<name>`` raw, the objectives oriented).
        settings: The study's import settings (each metric's direction).
    """

    study: str
    names: tuple[str, ...]
    objectives: tuple[str, ...]
    targets: tuple[TargetFit, ...]
    predictor: Predictor
    runs: int
    measured: dict[str, np.ndarray]
    settings: TableSettings

    @classmethod
    def fit(cls, study: optuna.Study, *, seed: int = 0) -> TableFit:
        """Fit the predictor on the runs of table study ``study``.

        Raises:
            StudyError: ``study`` holds no imported runs, or too few to fit.
        """
        settings = table_settings(study)
        if settings is None:
            raise StudyError(f"study {study.study_name!r} holds no imported runs; give a study made by "
                             "`demix import-runs`")
        x, y = training_data(study)
        fitted = {k: v for k, v in y.items() if k not in _single(settings, y)}  # a one-metric objective: its metric
        model = Predictor.fit(x, fitted, seed=seed)
        higher = settings.objectives.higher
        targets = [TargetFit(m, score_key(m), bool(higher.get(m, False)), model.spearman[score_key(m)],
                             model.error[score_key(m)]) for m in settings.metrics if score_key(m) in y]
        for o in settings.objectives.groups:
            if o in fitted:
                targets.append(TargetFit(o, o, True, model.spearman[o], model.error[o], family=True))
        return cls(study.study_name, tuple(record.components(study.user_attrs)), tuple(record.domains(study)),
                   tuple(targets), model, len(x), dict(y), settings)

    def predict(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Every target's prediction at one mixture (``weights``: domain -> weight): ``metric/<name>`` raw, the
        objectives oriented."""
        row = np.array([[float(weights.get(n, 0.0)) for n in self.names]])  # (1, K)
        out = {t: float(m.predict(row)[0]) for t, m in self.predictor.models.items()}
        for o, metric in _single(self.settings, out).items():
            out[o] = self.settings.objectives.orient(metric, out[score_key(metric)])
        return out

    def held_out(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(out-of-fold predictions, measured scores) of one target over the runs."""
        return self.predictor.held_out[key], self.measured[key]


def _single(settings: TableSettings, targets: Mapping[str, object]) -> dict[str, str]:
    """Objective -> its one metric, for the objectives that are one metric whose raw score is among ``targets``."""
    return {o: ms[0] for o, ms in settings.objectives.groups.items() if len(ms) == 1 and score_key(ms[0]) in targets}
