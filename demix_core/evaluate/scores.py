"""Scores: what a suite reports for one model, and the DeMix composite over many.

Conventions shared by evaluation, search and the dashboard:
- ``benchmarks`` maps ``"<benchmark>/<metric>"`` (e.g. ``"gsm8k/bpb"``, ``"arc_easy/acc"``) to the raw
  value, with ``higher_is_better`` saying each metric's direction.
- ``domains`` maps a domain (``general``, ``math``, ``code``...) to ONE higher-is-better number: the mean
  over the domain's benchmarks of each primary metric, sign-flipped when lower is better (so a BPB of
  1.2 contributes -1.2). Studies maximise these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Scores:
    """One model's scores on a suite.

    Attributes:
        benchmarks: ``"task/metric"`` -> raw value.
        higher_is_better: ``"task/metric"`` -> direction.
        domains: Domain -> higher-is-better domain score.
        seconds: Wall time of the evaluation.
        primary: ``"task/metric"`` keys that feed the domain scores.
    """

    benchmarks: dict[str, float]
    higher_is_better: dict[str, bool]
    domains: dict[str, float]
    seconds: float = 0.0
    primary: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json`` output and Optuna user attributes."""
        return {
            "benchmarks": dict(self.benchmarks),
            "domains": dict(self.domains),
            "seconds": self.seconds,
            "higher_is_better": dict(self.higher_is_better),
            "primary": list(self.primary),
        }

    @property
    def average(self) -> float:
        """Mean of the domain scores (the paper's overall average)."""
        return float(np.mean(list(self.domains.values()))) if self.domains else float("nan")


def percentile_ranks(values: Sequence[float]) -> np.ndarray:
    """Percentile rank in [0, 1] of each value among ``values`` (ties share their mean rank)."""
    from scipy.stats import rankdata

    x = np.asarray(values, dtype=np.float64)
    if len(x) == 1:
        return np.ones(1)
    return (rankdata(x, method="average") - 1.0) / (len(x) - 1.0)


def composite(domain_scores: Sequence[Mapping[str, float]],
              weights: Mapping[str, float] | None = None) -> np.ndarray:
    """The DeMix composite: per domain, the percentile rank of each model's higher-is-better score;
    then the (weighted) mean over domains. Shape (n_models,).

    Args:
        domain_scores: One ``{domain: score}`` per model (all with the same domains).
        weights: Optional domain weights (default: equal).
    """
    if not domain_scores:
        return np.zeros(0)
    domains = list(domain_scores[0])
    w = np.asarray([1.0 if weights is None else float(weights.get(d, 0.0)) for d in domains])
    if w.sum() <= 0:
        w = np.ones(len(domains))
    ranks = np.stack([percentile_ranks([s[d] for s in domain_scores]) for d in domains], axis=1)
    return ranks @ (w / w.sum())
