"""Pareto fronts and hypervolumes of maximised objectives (plain numpy; Optuna's exact hypervolume)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n, m), all objectives maximised."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    mask = np.ones(n, dtype=bool)
    if n == 0:
        return mask
    order = np.argsort(-v[:, 0], kind="stable")
    for pos, i in enumerate(order):
        if not mask[i]:
            continue
        others = v[order[pos + 1:]]
        dominated = np.all(others <= v[i], axis=1) & np.any(others < v[i], axis=1)
        mask[order[pos + 1:][dominated]] = False
        # a later row can dominate i only if it ties on objective 0
        ties = order[pos + 1:][(others[:, 0] == v[i, 0])]
        for j in ties:
            if np.all(v[j] >= v[i]) and np.any(v[j] > v[i]):
                mask[i] = False
                break
    return mask


def hypervolume(values: np.ndarray, reference: ArrayLike) -> float:
    """Hypervolume dominated by ``values`` (maximised) above ``reference``; exact for 1–3 objectives,
    Optuna's implementation beyond."""
    v = np.asarray(values, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if len(v) == 0:
        return 0.0
    v = v[np.all(v > ref, axis=1)]
    if len(v) == 0:
        return 0.0
    if v.shape[1] == 1:
        return float(v.max() - ref[0])
    from optuna._hypervolume import compute_hypervolume

    # Optuna computes the hypervolume of minimisation problems (flip signs); it drops dominated points itself.
    return float(compute_hypervolume(-v, -ref))


def hypervolume_history(values: np.ndarray, reference: ArrayLike, *, points: int | None = None) -> np.ndarray:
    """Hypervolume after each of the first 1..n rows (in trial order).

    With ``points``, only that many evenly spaced prefixes are computed (the rest are filled forward), so
    a 5,000-trial study draws in milliseconds; each prefix keeps only the running Pareto front.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return np.zeros(0)
    at = np.arange(n) if points is None or n <= points else np.unique(np.linspace(0, n - 1, points).astype(int))
    out = np.empty(n)
    front = v[:0]
    last, previous = 0, 0.0
    for i in at:
        out[last:i] = previous  # rows between two computed prefixes keep the earlier value
        front = np.vstack([front, v[last: i + 1]])
        front = front[pareto_mask(front)]
        previous = out[i] = hypervolume(front, reference)
        last = int(i) + 1
    return out
