"""A study's trials as a table: one row per trial, for the dashboard, the report and exports."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import optuna
import pandas as pd

from demix_core.search import record


def _trial_row(t: optuna.trial.FrozenTrial, comps: Sequence[str], domains: Sequence[str]) -> dict[str, Any]:
    merge_s, eval_s = record.seconds(t)
    row: dict[str, Any] = {"number": t.number, "state": t.state.name, "source": record.source(t, ""),
                           "worker": record.worker(t), "device": record.device(t),
                           "datetime_complete": t.datetime_complete, "merge_s": merge_s, "eval_s": eval_s}
    mix = record.shown_mixture(t) or {}
    for c in comps:
        row[f"w:{c}"] = mix.get(c)
    for d, v in zip(domains, t.values or [None] * len(domains)):
        row[f"d:{d}"] = v
    for k, v in record.benchmarks(t).items():
        row[f"b:{k}"] = v
    return row


def trials_frame(study: optuna.Study, *, states: Sequence[optuna.trial.TrialState] | None = None) -> pd.DataFrame:
    """One row per trial: number, state, source, worker, domain scores, weights, benchmark scores, timings.

    Columns: ``number``, ``state``, ``source``, ``worker``, ``device``, ``datetime_complete``,
    ``d:<domain>``, ``w:<component>``, ``b:<benchmark/metric>``, ``merge_s``, ``eval_s``.
    """
    comps, domains = record.components(study.user_attrs), record.domains(study)
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
        self._comps = record.components(study.user_attrs)
        self._domains = record.domains(study)
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

