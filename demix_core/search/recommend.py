"""The recommendation for a study: finished trials -> predictor -> ranked samples -> top-k average."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import optuna
from optuna.trial import TrialState

from demix_core.errors import StudyError
from demix_core.search.predictor import Recommendation, recommend
from demix_core.search.study import study_bounds
from demix_core.workspace.manifest import Workspace


def trial_proxy(trial: optuna.trial.FrozenTrial, study: optuna.Study) -> str:
    """The proxy kind that scored a trial (its ``proxy`` attribute, else the study's, else ``merge``)."""
    return str(trial.user_attrs.get("proxy") or study.user_attrs.get("proxy") or "merge")


def training_data(study: optuna.Study, proxy: str | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n, K) weights and {target: (n,)} for every complete trial: domains and every benchmark.

    Args:
        study: The study.
        proxy: Keep only trials scored by this proxy kind (None: every trial).

    Raises:
        StudyError: ``proxy`` is given and no complete trial was scored by it.
    """
    comps = list(study.user_attrs["components"])
    domains = list(study.metric_names or study.user_attrs["domains"])
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.user_attrs.get("mixture")]
    if proxy is not None:
        kinds = sorted({trial_proxy(t, study) for t in done})
        done = [t for t in done if trial_proxy(t, study) == proxy]
        if not done and kinds:
            raise StudyError(f"study {study.study_name!r} has no complete trial scored by the {proxy} proxy (its "
                             f"trials were scored by: {', '.join(kinds)}); give --proxy {kinds[0]} or run a study "
                             f"with --proxy {proxy}")
    x = np.array([[t.user_attrs["mixture"].get(c, 0.0) for c in comps] for t in done]).reshape(len(done), len(comps))
    y: dict[str, np.ndarray] = {d: np.array([t.values[i] for t in done]) for i, d in enumerate(domains)}
    benches = sorted({k for t in done for k in t.user_attrs.get("benchmarks", {})})
    for b in benches:
        if all(b in t.user_attrs.get("benchmarks", {}) for t in done):
            y[b] = np.array([t.user_attrs["benchmarks"][b] for t in done])
    return x, y


def recommend_for_study(ws: Workspace, study: optuna.Study, *, top_k: int = 128, samples: int = 100_000,
                        weighting: str | Mapping[str, float] = "composite", seed: int = 0,
                        proxy: str | None = None) -> Recommendation:
    """Fit the predictor on the study's finished trials (only those of proxy kind ``proxy``, when given) and
    recommend a mixture inside the study's feasible set."""
    x, y = training_data(study, proxy)
    domains = list(study.metric_names or study.user_attrs["domains"])
    return recommend(x, y, list(study.user_attrs["components"]), domains,
                     tokens=[c.tokens for c in ws.components], top_k=top_k, samples=samples, weighting=weighting,
                     seed=seed, bounds=study_bounds(ws, study.user_attrs))

