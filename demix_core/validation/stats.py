"""Rank statistics of proxies against references: plain arrays in, numbers out, each checkable by hand.

Spearman's rho (on the top of the ranking too), capability recovery, the spread ratio, the bootstrap over
references and the paired difference of two methods with its interval and outcome (beat, not beat,
inconclusive).

Capability recovery is ``sum(proxy) / sum(reference)`` on positive, higher-is-better quantities. Our
domain scores are negated bits-per-byte (higher is better, negative), so for them recovery is
``sum(reference BPB) / sum(proxy BPB)``: 1.0 means the proxies are as good as the references,
below 1 that they are worse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

TOP_FRACTION = 0.25
MIN_TOP = 4


def ranks(values: ArrayLike) -> np.ndarray:
    """1-based ranks, ties given their average rank (as ``scipy.stats.rankdata``)."""
    a = np.asarray(values, dtype=float)
    out = np.empty(len(a))
    out[a.argsort(kind="mergesort")] = np.arange(1, len(a) + 1)
    _, inverse, count = np.unique(a, return_inverse=True, return_counts=True)
    if len(count) < len(a):
        out = (np.bincount(inverse, weights=out) / count)[inverse]
    return out


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation: Pearson's r of the ranks (nan when a side is constant or has < 2 points).

    Written with numpy (equal to ``scipy.stats.spearmanr``) because bootstraps call it tens of thousands of times.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(np.clip((ra @ rb) / np.sqrt((ra @ ra) * (rb @ rb)), -1.0, 1.0))


def top_spearman(proxy: ArrayLike, reference: ArrayLike,
                 fraction: float = TOP_FRACTION) -> tuple[float, int]:
    """Spearman on the references in the top ``fraction`` by reference score; (rho, how many)."""
    ref = np.asarray(reference, dtype=float)
    k = max(1, math.ceil(len(ref) * fraction))
    top = np.argsort(-ref)[:k]
    return spearman(np.asarray(proxy, dtype=float)[top], ref[top]), k


def recovery(proxy: ArrayLike, reference: ArrayLike) -> float:
    """Capability recovery: proxy capability as a fraction of the reference's (see module doc)."""
    p, r = float(np.sum(proxy)), float(np.sum(reference))
    if r == 0 or p == 0:
        return float("nan")
    return p / r if r > 0 else r / p


def spread_ratio(proxy: ArrayLike, reference: ArrayLike) -> float:
    """Range of proxy scores / range of reference scores."""
    rr = float(np.ptp(reference))
    return float(np.ptp(proxy)) / rr if rr > 0 else float("nan")


@dataclass
class Figure:
    """A metric with its bootstrap 95% interval and whether it is meaningful."""

    value: float
    low: float = float("nan")
    high: float = float("nan")
    meaningful: bool = True

    def text(self) -> str:
        """``0.81 [0.62, 0.93]`` (or ``n/a``)."""
        if math.isnan(self.value):
            return "n/a"
        s = f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"
        return s + " (n<4: not meaningful)" if not self.meaningful else s


def bootstrap(metric: Callable[[np.ndarray, np.ndarray], float], proxy: np.ndarray, reference: np.ndarray, *,
              n: int = 1000, seed: int = 0) -> Figure:
    """The metric and its percentile 95% interval over references resampled with replacement."""
    value = metric(proxy, reference)
    rng = np.random.default_rng(seed)
    m = len(reference)
    draws = []
    for _ in range(n):
        idx = rng.integers(0, m, m)
        v = metric(proxy[idx], reference[idx])
        if not math.isnan(v):
            draws.append(v)
    if not draws:
        return Figure(value)
    return Figure(value, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


def macro_rho(proxy: np.ndarray, reference: np.ndarray) -> float:
    """Mean over columns (domains) of Spearman rho, skipping columns where it is undefined."""
    vals = [spearman(proxy[:, i], reference[:, i]) for i in range(reference.shape[1])]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def paired_difference(metric: Callable[[np.ndarray, np.ndarray], float], a: np.ndarray, b: np.ndarray,
                      reference: np.ndarray, *, n: int = 1000, seed: int = 0) -> Figure:
    """``metric(a, ref) - metric(b, ref)`` with a paired bootstrap 95% interval (the same resampled references for
    both sides, so what the two predictors share cancels out)."""
    value = metric(a, reference) - metric(b, reference)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        idx = rng.integers(0, len(reference), len(reference))
        d = metric(a[idx], reference[idx]) - metric(b[idx], reference[idx])
        if not math.isnan(d):
            draws.append(d)
    if not draws or math.isnan(value):
        return Figure(value)
    return Figure(value, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


def outcome(diff: Figure) -> str:
    """A difference read through its paired 95% interval: ``beat`` (the interval lies above 0), ``not beat``
    (below 0: the other side wins beyond noise) or ``inconclusive`` (it holds 0, or there is no interval)."""
    if math.isnan(diff.value) or math.isnan(diff.low):
        return "inconclusive"
    if diff.low > 0:
        return "beat"
    if diff.high < 0:
        return "not beat"
    return "inconclusive"


def _diff_text(d: Figure) -> str:
    return f"{d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}]" if not math.isnan(d.low) else f"{d.value:+.2f}"


