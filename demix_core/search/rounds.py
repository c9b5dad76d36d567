"""The DeMix sampler: the paper's search as an Optuna sampler (registered as ``demix``).

Round 1 draws mixtures from the Dirichlet prior (token counts, temperature, per-component caps, grid
rounding). Each later round fits the predictor on the finished trials and proposes the top-ranked
predicted mixtures that are not yet in the study. The paper's schedule is 64 + 32 + 16 trials; when a
study is created with a smaller budget the rounds shrink in proportion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from demix_core.mixing.bounds import Bounds
from demix_core.mixing.mixture import DirichletPrior, Mixture, param_name, params_from_mixture
from demix_core.search import record
from demix_core.workspace.manifest import Workspace

PAPER_ROUNDS = (64, 32, 16)


def scaled_rounds(n_trials: int | None, rounds: Sequence[int] = PAPER_ROUNDS) -> tuple[int, ...]:
    """The paper's rounds scaled to a budget (each round at least 2 trials)."""
    if not n_trials:
        return tuple(rounds)
    total = sum(rounds)
    scaled = [max(2, math.floor(r * n_trials / total)) for r in rounds]
    scaled[0] += max(0, n_trials - sum(scaled))
    return tuple(scaled)


class DemixSampler(optuna.samplers.BaseSampler):
    """Dirichlet-prior first round, then predictor-guided rounds.

    Args:
        names: Component names.
        prior: The round-1 Dirichlet prior.
        domains: The objectives (ranked by the composite of percentile ranks).
        rounds: Trials per round; trials past the last round continue with predictor rounds of the last size.
        seed: Seed.
        samples: Candidate mixtures ranked per round.
        bounds: The study's feasible set (token budget); every proposal is projected onto it. Default: none.
    """

    def __init__(self, names: Sequence[str], prior: DirichletPrior, *, rounds: Sequence[int] = PAPER_ROUNDS,
                 seed: int = 0, samples: int = 20_000, bounds: Bounds | None = None) -> None:
        self.names = tuple(names)
        self.prior = prior
        self.rounds = tuple(rounds)
        self.seed = seed
        self.samples = samples
        self.bounds = bounds if bounds is not None and not bounds.trivial else None
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._cache: dict[int, np.ndarray] = {}

    @classmethod
    def for_workspace(cls, ws: Workspace, *, seed: int = 0, n_trials: int | None = None,
                      bounds: Bounds | None = None) -> DemixSampler:
        """The sampler with the workspace's token counts as the prior (temperature 2, grid 0.05).

        The caps are the paper's repetition rule: with a token budget, each component's upper bound
        ``min(max weight, max_epochs x available / target)`` (:mod:`demix_core.workspace.budget`); without one, 0.7.
        """
        tokens = tuple(float(max(c.tokens, 1)) for c in ws.components)
        k = len(tokens)
        if bounds is not None and not bounds.trivial:
            caps = tuple(max(h, 1e-9) for h in bounds.hi)
        else:
            caps = tuple([max(0.7, 1.0 / k + 1e-9)] * k)
        prior = DirichletPrior(ws.component_names, tokens, temperature=2.0, caps=caps, grid=0.05)
        return cls(ws.component_names, prior, rounds=scaled_rounds(n_trials), seed=seed, bounds=bounds)

    def _params(self, x: np.ndarray) -> dict[str, float]:
        """Optuna parameters of a mixture, projected onto the feasible set first (the identity when it is inside:
        the prior's caps and grid already keep the upper bounds; the projection adds the lower ones)."""
        if self.bounds is not None:
            x = self.bounds.project(x)
        return params_from_mixture(Mixture.from_weights(self.names, x.tolist()))

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {param_name(n): FloatDistribution(0.0, 1.0) for n in self.names}

    def _round_of(self, index: int) -> tuple[int, int]:
        """(round number, position in round) of the index-th sampled trial."""
        start = 0
        for r, size in enumerate(self.rounds):
            if index < start + size:
                return r, index - start
            start += size
        last = self.rounds[-1]
        extra = index - start
        return len(self.rounds) + extra // last, extra % last

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study.get_trials(deepcopy=False)
        index = sum(1 for t in trials if t.number < trial.number and record.source(t, "demix") == "demix")
        rnd, pos = self._round_of(index)
        if rnd == 0:
            return self._params(self.prior.sample(1, seed=self.seed * 100_003 + index)[0])
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
        if len(done) < 4:
            return self._params(self.prior.sample(1, seed=self.seed * 100_003 + index)[0])
        if rnd not in self._cache:  # one fit per round, on the trials finished when the round starts
            self._cache = {rnd: self._propose(study, done, rnd)}
        proposals = self._cache[rnd]
        return self._params(proposals[pos % len(proposals)])

    def _propose(self, study: optuna.Study, done: list[FrozenTrial], rnd: int) -> np.ndarray:
        from demix_core.search.predictor import Predictor, candidates, rank

        domains = list(study.metric_names or [f"obj{i}" for i in range(len(done[0].values))])
        x = np.array([[(record.mixture(t) or {}).get(n, 0.0) for n in self.names] for t in done])
        y = {d: np.array([t.values[i] for t in done]) for i, d in enumerate(domains)}
        model = Predictor.fit(x, y, seed=self.seed, folds=3) if len(done) >= 8 else None
        cand = candidates(self.names, self.prior.tokens, self.samples, seed=self.seed + rnd, bounds=self.bounds)
        if model is None:
            return cand[: self.rounds[min(rnd, len(self.rounds) - 1)]]
        score = rank(model.predict(cand), domains, "composite")
        order = np.argsort(-score)
        chosen: list[np.ndarray] = []
        size = self.rounds[min(rnd, len(self.rounds) - 1)]
        for i in order:  # skip near-duplicates of tried or chosen mixtures
            c = cand[i]
            if all(np.abs(c - e).sum() > 0.05 for e in [*x, *chosen]):
                chosen.append(c)
            if len(chosen) == size:
                break
        return np.array(chosen) if chosen else cand[order[:size]]

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)
