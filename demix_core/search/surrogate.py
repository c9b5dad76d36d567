"""A study's surrogate: predicted domain scores (with a spread) for any mixture, in microseconds.

The front sampler's Scheffé mixture polynomial (:mod:`demix_core.search.scheffe`), fitted on a study's
finished trials: the Mixer shows its prediction while a slider moves, before the merged proxy's measured
scores arrive. The spread is the standard deviation over the fit's bootstrap refits (16 by default), the
same spread the front sampler can add as optimism.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from demix_core.search.scheffe import ScheffeModel

KIND = "Scheffé polynomial"
SPREAD = "bootstrap standard deviation"


@dataclass
class Surrogate:
    """A Scheffé fit of every domain score over the mixture weights.

    Attributes:
        names: Components (the order of the weights).
        domains: The predicted domains (the study's objectives).
        model: The fit.
        trials: How many finished trials it was fitted on.
    """

    names: tuple[str, ...]
    domains: tuple[str, ...]
    model: ScheffeModel
    trials: int

    @staticmethod
    def min_trials(k: int) -> int:
        """Finished trials needed before a fit: the front sampler's simplex design (k pure components and
        the centroid), which pins down the linear blend."""
        return k + 1

    @classmethod
    def fit(cls, done: pd.DataFrame, names: Sequence[str], domains: Sequence[str], *, seed: int = 0,
            bootstrap: int = 16) -> Surrogate | None:
        """Fit on a study's complete trials (``trials_frame`` rows with ``w:`` and ``d:`` columns).

        Returns:
            The surrogate, or None when fewer than :meth:`min_trials` trials have every weight and score.
        """
        wcols, dcols = [f"w:{n}" for n in names], [f"d:{d}" for d in domains]
        if done.empty or not all(c in done for c in wcols + dcols):
            return None
        x = done[wcols].to_numpy(dtype=float)
        y = done[dcols].to_numpy(dtype=float)
        ok = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1) & (x.sum(axis=1) > 0)
        x, y = x[ok], y[ok]
        if len(x) < cls.min_trials(len(names)):
            return None
        x = x / x.sum(axis=1, keepdims=True)
        return cls(tuple(names), tuple(domains), ScheffeModel.fit(x, y, bootstrap=bootstrap, seed=seed), len(x))

    def predict(self, weights: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        """({domain: predicted score}, {domain: spread}) for one mixture ``{component: weight}``."""
        x = np.array([[float(weights[n]) for n in self.names]])
        mean, spread = self.model.predict(x)
        return ({d: float(mean[0, i]) for i, d in enumerate(self.domains)},
                {d: float(spread[0, i]) for i, d in enumerate(self.domains)})
