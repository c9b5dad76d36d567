"""The front sampler (registered as ``front``): fills a mixture study's Pareto front in few trials.

Mixture experiments have a classic recipe, and this sampler follows it:

1. a simplex design first: each pure component, then the centroid (the pure components are the extremes
   the front usually starts from, and they pin down the linear blend);
2. then, per trial, a Scheffé polynomial per objective (:mod:`demix_core.search.scheffe`) fitted to the
   finished trials; among a few thousand candidate mixtures (flat, sparse and edge mixtures) it picks
   the one whose prediction (mean, plus ``optimism`` x bootstrap spread if asked) adds the most
   hypervolume to the front observed so far. Trials that other workers are running enter that front
   at their predicted values, so parallel workers spread out instead of piling onto one spot.

Objectives are maximised (the study's directions). Like every sampler here it reads and writes only
the Optuna storage, so any number of workers can share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from demix_core.mixing.bounds import Bounds, mixture_from_trial_params
from demix_core.mixing.mixture import Mixture, param_name, params_from_mixture
from demix_core.search import record
from demix_core.search.pareto import hypervolume, pareto_mask
from demix_core.search.scheffe import ScheffeModel

NEAR = 0.02  # L1 distance under which two mixtures count as the same trial
MAX_SCORED = 300  # candidates (those reaching furthest past the front) whose exact gain is computed per trial
SCORED_BUDGET = 12_000  # ... at most this many over the front's size, so large studies stay fast


def simplex_design(k: int) -> np.ndarray:
    """The start: the k pure components, then the centroid. Shape (k + 1, k)."""
    return np.vstack([np.eye(k), np.full((1, k), 1.0 / k)])


def candidate_mixtures(k: int, n: int, *, seed: int) -> np.ndarray:
    """n mixtures to choose from: flat Dirichlet, sparse Dirichlet (near faces and edges) and two-component
    blends on every edge, shape (n, k)."""
    rng = np.random.default_rng(seed)
    edges = []
    for i in range(k):
        for j in range(i + 1, k):
            t = rng.uniform(0.05, 0.95, size=4)
            e = np.zeros((4, k))
            e[:, i], e[:, j] = t, 1 - t
            edges.append(e)
    edge = np.vstack(edges) if edges else np.zeros((0, k))
    rest = max(0, n - len(edge))
    return np.vstack([rng.dirichlet(np.ones(k), size=rest // 2),
                      rng.dirichlet(np.full(k, 0.3), size=rest - rest // 2), edge])


def untried(points: np.ndarray, tried: np.ndarray, *, near: float = NEAR) -> np.ndarray:
    """Mask of the rows of ``points`` farther than ``near`` (L1) from every row of ``tried``."""
    keep = np.ones(len(points), dtype=bool)
    if len(tried):
        for i in range(0, len(points), 256):  # (256, n, K) at a time
            gap = np.abs(points[i:i + 256, None, :] - tried[None, :, :]).sum(axis=2).min(axis=1)
            keep[i:i + 256] = gap > near
    return keep


def reach(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """How far each point gets past the front (additive epsilon): > 0 where no front point weakly dominates it."""
    return np.min(np.max(points[:, None, :] - front[None, :, :], axis=2), axis=1)


def hypervolume_gain(points: np.ndarray, front: np.ndarray, reference: np.ndarray, *,
                     limit: int | None = None) -> np.ndarray:
    """Hypervolume each row of ``points`` would add to ``front`` (maximised objectives), shape (n,).

    Rows dominated by the front gain 0; of the others, the ``limit`` that reach furthest past the front
    (additive epsilon) are scored exactly, the rest get 0. ``limit`` defaults to ``MAX_SCORED``, fewer
    once the front holds more than ``SCORED_BUDGET / MAX_SCORED`` points.
    """
    if limit is None:
        limit = max(16, min(MAX_SCORED, SCORED_BUDGET // max(1, len(front))))
    gain = np.zeros(len(points))
    if len(front) == 0:
        return np.prod(np.clip(points - reference, 0, None), axis=1)
    past = reach(points, front)
    open_ = np.flatnonzero(past > 0)
    open_ = open_[np.argsort(-past[open_])][:limit]
    base = hypervolume(front, reference)
    for i in open_:
        gain[i] = hypervolume(np.vstack([front, points[i]]), reference) - base
    return gain


class FrontSampler(optuna.samplers.BaseSampler):
    """Simplex design, then the largest predicted hypervolume gain under a Scheffé surrogate.

    Args:
        names: Component names.
        seed: Seed for candidate draws and the bootstrap.
        candidates: Candidate mixtures scored per trial.
        optimism: Weight of the bootstrap spread in the prediction (default 0, the mean alone: on the demo
            and on synthetic cubic fronts, 0.5 and 1.0 filled the front more slowly; fresh candidate draws
            per trial and the pending-trial rule already spread the trials).
        bounds: The study's feasible set (token budget): the design points, the candidates and the flat draws
            are projected onto it, so every proposal is feasible. Default: the plain simplex.
    """

    def __init__(self, names: Sequence[str], *, seed: int = 0, candidates: int = 3000, optimism: float = 0.0,
                 bounds: Bounds | None = None) -> None:
        self.names = tuple(names)
        self.seed = seed
        self.candidates = candidates
        self.optimism = optimism
        self.bounds = bounds if bounds is not None and not bounds.trivial else None
        self._random = optuna.samplers.RandomSampler(seed=seed)

    def _feasible(self, x: np.ndarray) -> np.ndarray:
        """Mixtures (K,) or (n, K) moved onto the feasible set (unchanged without a budget)."""
        return x if self.bounds is None else self.bounds.project(x)

    def design(self) -> np.ndarray:
        """The start: the pure components and the centroid, each projected onto the feasible set (under a
        budget a pure component becomes the feasible mixture richest in it); repeats dropped."""
        pts = self._feasible(simplex_design(len(self.names)))
        keep: list[np.ndarray] = []
        for p in pts:
            if all(np.abs(p - q).sum() > 1e-9 for q in keep):
                keep.append(p)
        return np.array(keep)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {param_name(n): FloatDistribution(0.0, 1.0) for n in self.names}

    def _mixture_of(self, t: FrozenTrial) -> np.ndarray | None:
        keys = [param_name(n) for n in self.names]
        if all(k in t.params for k in keys):
            return np.array(mixture_from_trial_params(self.names, t.params, self.bounds).weights)
        mix = record.shown_mixture(t)
        if mix and all(n in mix for n in self.names):
            return np.array([float(mix[n]) for n in self.names])
        return None

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        k = len(self.names)
        signs = np.array([1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0 for d in study.directions])
        done_x, done_y, pending = [], [], []
        unseen = 0  # earlier trials in flight whose mixture is not written yet (another worker is sampling it)
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            x = self._mixture_of(t)
            if x is None:
                unseen += t.number < trial.number and t.state == TrialState.RUNNING
                continue
            if t.state == TrialState.COMPLETE and t.values is not None and np.isfinite(t.values).all():
                done_x.append(x)
                done_y.append(np.array(t.values) * signs)
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(x)
        tried = np.array(done_x + pending).reshape(-1, k)
        # Design points in order; a worker that asked just before us took the next one without writing it yet.
        design = self.design()
        remaining = list(design[untried(design, tried)])
        if unseen < len(remaining):
            return self._params(remaining[unseen])
        rng_seed = self.seed * 1_000_003 + trial.number
        if len(done_x) < max(len(design), 2):  # the design is still running elsewhere: a flat draw meanwhile
            return self._params(np.random.default_rng(rng_seed).dirichlet(np.ones(k)))
        x_done, y_done = np.array(done_x), np.array(done_y)
        model = ScheffeModel.fit(x_done, y_done, seed=rng_seed)
        cand = self._feasible(candidate_mixtures(k, self.candidates, seed=rng_seed))
        cand = cand[untried(cand, tried)]
        if not len(cand):  # every candidate is next to a tried mixture: a dense study; a flat draw
            return self._params(np.random.default_rng(rng_seed).dirichlet(np.ones(k)))
        mean, spread = model.predict(cand)
        optimistic = mean + self.optimism * spread
        front = y_done[pareto_mask(y_done)]
        if pending:
            believed = model.predict(np.array(pending))[0]  # pending trials at their predicted values
            both = np.vstack([front, believed])
            front = both[pareto_mask(both)]
        span = np.ptp(y_done, axis=0)
        reference = y_done.min(axis=0) - 0.1 * np.where(span > 0, span, 1.0)
        gain = hypervolume_gain(optimistic, front, reference)
        if gain.max() > 0:  # the best gain; the next best if a simultaneous earlier ask likely took the best
            order = np.argsort(-gain, kind="stable")
            return self._params(cand[order[min(unseen, int((gain > 0).sum()) - 1)]])
        # nothing is predicted to improve the front: the candidate predicted closest to it
        return self._params(cand[int(np.argmax(reach(optimistic, front)))])

    def _params(self, x: np.ndarray) -> dict[str, float]:
        mix = Mixture.from_weights(self.names, np.clip(x, 0.0, None).tolist())
        if self.bounds is not None:
            mix = self.bounds.mixture(mix.array())
        return params_from_mixture(mix)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)
