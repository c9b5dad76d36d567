"""The DeMix predictor: per-metric regressors from mixture weights to scores, and the recommendation.

As in the paper: fit one regressor per metric (LightGBM; Ridge when trials are few), predict every
metric for many sampled mixtures, rank them by the composite of per-domain percentile ranks (or
another weighting), and average the top-k mixtures into the recommendation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demix_core.errors import StudyError
from demix_core.evaluate.scores import composite
from demix_core.mixing.bounds import Bounds
from demix_core.mixing.mixture import DirichletPrior, Mixture, uniform_simplex
from demix_core.search.against import Against, NothingBeats, Screen, screen
from demix_core.search.picks import DEFAULT_PICK, PICKS

MIN_TRIALS = 8
LIGHTGBM_MIN = 30


def _model(n: int, seed: int) -> Any:
    if n >= LIGHTGBM_MIN:
        from lightgbm import LGBMRegressor

        return LGBMRegressor(n_estimators=300, learning_rate=0.05, num_leaves=15, min_child_samples=5,
                             subsample=0.9, subsample_freq=1, colsample_bytree=1.0, random_state=seed,
                             verbose=-1, n_jobs=1)
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1e-3)


@dataclass
class Predictor:
    """One regressor per target, with held-out Spearman from k-fold cross-validation.

    Attributes:
        spearman: Target -> Spearman's rho of its out-of-fold predictions against the scores.
        held_out: Target -> its (n,) out-of-fold predictions (each row predicted by the fold that did not see it).
        error: Target -> the root mean square of its out-of-fold errors, in the target's units.
    """

    targets: list[str]
    models: dict[str, Any] = field(default_factory=dict)
    spearman: dict[str, float] = field(default_factory=dict)
    kind: str = ""
    held_out: dict[str, np.ndarray] = field(default_factory=dict)
    error: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, x: np.ndarray, y: Mapping[str, np.ndarray], *, seed: int = 0, folds: int = 5) -> Predictor:
        """Fit on (n, K) weights and {target: (n,)} scores.

        Raises:
            StudyError: Fewer than :data:`MIN_TRIALS` rows.
        """
        from scipy.stats import spearmanr

        n = len(x)
        if n < MIN_TRIALS:
            raise StudyError(f"{n} finished trials are too few to fit a predictor; need at least {MIN_TRIALS} "
                             "(run more trials of the study first)")
        out = cls(list(y))
        out.kind = "lightgbm" if n >= LIGHTGBM_MIN else "ridge"
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(n) % min(folds, n)
        for target, values in y.items():
            v = np.asarray(values, dtype=np.float64)
            pred = np.empty(n)
            for f in range(min(folds, n)):
                test = fold_of == f
                m = _model(int((~test).sum()), seed).fit(x[~test], v[~test])
                pred[test] = m.predict(x[test])
            rho = spearmanr(pred, v).statistic if np.ptp(v) > 0 else float("nan")
            out.spearman[target] = float(rho)
            out.held_out[target] = pred
            out.error[target] = float(np.sqrt(np.mean((pred - v) ** 2)))
            out.models[target] = _model(n, seed).fit(x, v)
        return out

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{target: (m,)} predictions for (m, K) weights."""
        return {t: np.asarray(m.predict(x), dtype=np.float64) for t, m in self.models.items()}


@dataclass
class Recommendation:
    """The recommended mixture, its predicted scores, and how far to trust them."""

    mixture: Mixture
    predicted: dict[str, float]
    spearman: dict[str, float]
    trials: int
    top_k: int
    samples: int
    regressor: str
    neighbours: list[dict[str, Any]]
    pick: str = "mean"
    against: dict[str, Any] | None = None  # the screen against a mixture (recommend --against), with the pick's margins

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"mixture": self.mixture.as_dict(), "predicted": self.predicted, "spearman": self.spearman,
                "trials": self.trials, "top_k": self.top_k, "samples": self.samples, "regressor": self.regressor,
                "pick": self.pick, "neighbours": self.neighbours,
                **({"against": self.against} if self.against is not None else {})}


def candidates(names: Sequence[str], tokens: Sequence[float], n: int, *, seed: int = 0,
               bounds: Bounds | None = None) -> np.ndarray:
    """``n`` mixtures to rank: half flat Dirichlet, half the DeMix token prior, projected onto ``bounds`` (the
    token budget's feasible set; the prior's caps are its upper bounds) when given. Shape (n, K)."""
    half = n // 2
    caps = None if bounds is None or bounds.trivial else tuple(max(h, 1e-9) for h in bounds.hi)
    prior = DirichletPrior(tuple(names), tuple(max(float(t), 1.0) for t in tokens), temperature=2.0, caps=caps)
    out = np.vstack([uniform_simplex(len(names), half, seed=seed), prior.sample(n - half, seed=seed + 1)])
    return out if caps is None or bounds is None else bounds.project(out)


def rank(pred: Mapping[str, np.ndarray], domains: Sequence[str], weighting: str | Mapping[str, float]) -> np.ndarray:
    """Ranking score per candidate: composite of per-domain percentile ranks, the plain average, or weights."""
    if weighting == "average":
        return np.mean([pred[d] for d in domains], axis=0)
    weights = None if weighting == "composite" else dict(weighting)  # type: ignore[arg-type]
    rows = [{d: float(pred[d][i]) for d in domains} for i in range(len(pred[domains[0]]))]
    return composite(rows, weights)


def recommend(x: np.ndarray, y: Mapping[str, np.ndarray], names: Sequence[str], domains: Sequence[str], *,
              tokens: Sequence[float] | None = None, top_k: int = 128, samples: int = 100_000,
              weighting: str | Mapping[str, float] = "composite", seed: int = 0,
              bounds: Bounds | None = None, against: Against | None = None, pick: str = DEFAULT_PICK) -> Recommendation:
    """Fit, predict on ``samples`` mixtures, rank, and average the ``top_k`` best.

    Args:
        x: (n, K) finished trials' weights.
        y: {target: (n,)} their scores; must include every domain.
        names: Component names.
        domains: The objectives.
        tokens: Token counts for the prior half of the candidates (default: equal).
        top_k: How many top-ranked mixtures are averaged.
        samples: How many mixtures are ranked.
        weighting: ``composite`` (the paper), ``average``, or {domain: weight}.
        seed: Seed for sampling and the regressors.
        bounds: The token budget's feasible set: only feasible mixtures are ranked, so their average (the set
            is convex) is feasible too.
        against: Rank only the candidates expected to beat this mixture beyond noise
            (:mod:`demix_core.search.against`).
        pick: ``mean`` (of the top k, the paper), ``best`` (the single best candidate) or ``trial`` (the best
            measured trial; its measured scores are ranked and screened).

    Raises:
        NothingBeats: ``against`` is given and no candidate qualifies (it says which domain blocks).
    """
    missing = [d for d in domains if d not in y]
    if missing:
        raise StudyError(f"trials lack domain scores for {missing}; they were made with another suite")
    if pick not in PICKS:
        raise StudyError(f"unknown pick {pick!r}; choose {', '.join(PICKS)}")
    model = Predictor.fit(x, y, seed=seed)
    cand = candidates(names, tokens or [1.0] * len(names), samples, seed=seed, bounds=bounds)
    pred = model.predict(cand)
    pool, pool_pred = (np.asarray(x, dtype=float), {d: np.asarray(y[d], dtype=float) for d in domains}) \
        if pick == "trial" else (cand, pred)
    score = rank(pool_pred, domains, weighting)
    scr = None if against is None else _screen(model, pool_pred, domains, against)
    if scr is not None:
        score = np.where(scr.qualified, score, -np.inf)
    k = max(1, min(top_k if pick == "mean" else 1, len(pool), scr.count if scr is not None else len(pool)))
    top = np.argsort(-score)[:k]
    mean = pool[top].mean(axis=0)
    mix = Mixture.from_weights(names, (mean if bounds is None else bounds.project(mean)).tolist())
    at = {t: float(v[0]) for t, v in model.predict(mix.array()[None, :]).items()}
    neighbours = [{"mixture": dict(zip(names, map(float, pool[i]))), "score": float(score[i]),
                   **{d: float(pool_pred[d][i]) for d in domains}} for i in top[:10]]
    judged = None
    if scr is not None:
        margins = scr.at(at)
        judged = {**scr.to_json(), "at": margins,
                  "pick_qualifies": _qualifies(at, scr)}
    return Recommendation(mix, at, model.spearman, len(x), k, len(pool), model.kind, neighbours, pick, judged)


def _screen(model: Predictor, pool_pred: Mapping[str, np.ndarray], domains: Sequence[str],
            against: Against) -> Screen:
    """The screen of the pool against the target (its measured scores when given, else predicted).

    Raises:
        NothingBeats: No candidate qualifies.
    """
    if against.measured is not None:
        target_scores = {d: float(against.measured[d]) for d in domains}
    else:
        at_target = model.predict(against.target.mixture.array()[None, :])
        target_scores = {d: float(at_target[d][0]) for d in domains}
    scr = screen(pool_pred, target_scores, domains, model.error, against.floor, against.target,
                 confidence=against.confidence, total=against.total, beat=against.beat,
                 target_measured=against.measured is not None)
    if not scr.count:
        raise NothingBeats(scr)
    return scr


def _qualifies(at: Mapping[str, float], scr: Screen) -> bool:
    """Whether the pick's own predictions clear the screen (the mean of qualifying candidates need not)."""
    one = screen({d: np.array([at[d]]) for d in scr.domains}, scr.target_predicted, scr.domains, scr.error,
                 scr.floor if scr.floor_known else None, scr.target, confidence=scr.confidence, total=scr.total,
                 beat=scr.beat, target_measured=scr.target_measured)
    return bool(one.qualified[0])
