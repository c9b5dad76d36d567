"""The recommendation for a study: finished trials -> predictor -> ranked samples -> top-k average."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from demix_core.errors import ConfigError, StudyError
from demix_core.mixing.mixture import Mixture
from demix_core.search import record
from demix_core.search.against import Against, parse_target, z_of
from demix_core.search.picks import BEATS, DEFAULT_CONFIDENCE, DEFAULT_PICK
from demix_core.search.predictor import Recommendation, recommend
from demix_core.workspace.manifest import Workspace


def training_data(study: optuna.Study, proxy: str | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n, K) weights and {target: (n,)} for every complete trial: domains and every benchmark.

    Args:
        study: The study.
        proxy: Keep only trials scored by this proxy kind (None: every trial).

    Raises:
        StudyError: ``proxy`` is given and no complete trial was scored by it.
    """
    comps = record.components(study.user_attrs)
    domains = record.domains(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if record.mixture(t)]
    if proxy is not None:
        kinds = sorted({record.trial_proxy(t, study) for t in done})
        done = [t for t in done if record.trial_proxy(t, study) == proxy]
        if not done and kinds:
            raise StudyError(f"study {study.study_name!r} has no complete trial scored by the {proxy} proxy (its "
                             f"trials were scored by: {', '.join(kinds)}); give --proxy {kinds[0]} or run a study "
                             f"with --proxy {proxy}")
    mixtures = [record.mixture(t) or {} for t in done]
    x = np.array([[m.get(c, 0.0) for c in comps] for m in mixtures]).reshape(len(done), len(comps))
    y: dict[str, np.ndarray] = {d: np.array([t.values[i] for t in done]) for i, d in enumerate(domains)}
    scores = [record.benchmarks(t) for t in done]
    for b in sorted({k for s in scores for k in s}):
        if all(b in s for s in scores):
            y[b] = np.array([s[b] for s in scores])
    return x, y


def against_mixture(ws: Workspace, domains: Sequence[str], spec: str, *, floor: Mapping[str, float] | None,
                    confidence: float = DEFAULT_CONFIDENCE, beat: str = "every",
                    weighting: str | Mapping[str, float] = "composite") -> Against:
    """What ``recommend --against`` asks (the CLI and the Recommend page alike): the target ``spec`` (``natural``,
    ``uniform`` or ``name=w,...``), the noise ``floor`` per domain (:func:`demix_core.validation.noise.study_floor`),
    the confidence, and with ``beat="total"`` the weighted total (``weighting``'s domain weights, else equal).

    Raises:
        ConfigError: A confidence outside [0.5, 1), a bad target, or ``beat`` not one of :data:`BEATS`.
    """
    z_of(confidence)  # a bad level fails before the fit
    if beat not in BEATS:
        raise ConfigError(f"beat {beat!r} must be one of {', '.join(BEATS)}")
    target = parse_target(spec, ws.component_names, [c.tokens for c in ws.components])
    total = None
    if beat == "total":
        total = dict(weighting) if isinstance(weighting, Mapping) else {d: 1.0 for d in domains}
    return Against(target, floor, confidence, total, beat=beat)


def measured_scores(study: optuna.Study, mixture: Mixture, proxy: str | None = None) -> dict[str, float] | None:
    """The mean measured domain scores of the study's complete trials of ``mixture`` (weights within 1e-6; only
    proxy kind ``proxy``'s, when given), or None when no trial measured it."""
    comps = record.components(study.user_attrs)
    want = np.array([mixture.as_dict().get(c, 0.0) for c in comps])
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        mix = record.mixture(t)
        if mix and (proxy is None or record.trial_proxy(t, study) == proxy) and \
                np.allclose([mix.get(c, 0.0) for c in comps], want, atol=1e-6):
            rows.append(t.values)
    if not rows:
        return None
    return {d: float(np.mean([r[i] for r in rows])) for i, d in enumerate(record.domains(study))}


def measure_target(ws: Workspace, study: optuna.Study, mixture: Mixture, *, device: str = "auto",
                   log: Callable[[str], None] = print) -> None:
    """Measure ``mixture`` as a trial of the study (queued, then scored by a worker here) unless a trial did:
    ``recommend --against`` then compares candidates with the mixture's measured scores, not a prediction."""
    from demix_core.search.study import enqueue
    from demix_core.search.worker import Worker

    if measured_scores(study, mixture, record.study_proxy(study)) is not None:
        return
    done = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    log(f"measuring {mixture.label(2)} as a trial of study {study.study_name!r} (the mixture to beat)")
    enqueue(study, mixture, source="against")
    Worker(ws, study.study_name, device=device, log=lambda line: None).run(done + 1)


def recommend_for_study(ws: Workspace, study: optuna.Study, *, top_k: int = 128, samples: int = 100_000,
                        weighting: str | Mapping[str, float] = "composite", seed: int = 0,
                        proxy: str | None = None, against: Against | None = None,
                        pick: str = DEFAULT_PICK) -> Recommendation:
    """Fit the predictor on the study's finished trials (only those of proxy kind ``proxy``, when given) and
    recommend a mixture inside the study's feasible set (one expected to beat ``against`` beyond noise, when
    given; ``pick``: see :func:`demix_core.search.predictor.recommend`)."""
    x, y = training_data(study, proxy)
    if against is not None and against.measured is None:
        from dataclasses import replace

        against = replace(against, measured=measured_scores(study, against.target.mixture, proxy))
    return recommend(x, y, record.components(study.user_attrs), record.domains(study),
                     tokens=[c.tokens for c in ws.components], top_k=top_k, samples=samples, weighting=weighting,
                     seed=seed, bounds=record.study_bounds(ws, study.user_attrs), against=against, pick=pick)

