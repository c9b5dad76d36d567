"""Scheffé mixture polynomials: the classic response-surface model for mixture experiments.

For weights ``x`` on the simplex there is no intercept (it is the sum of the linear terms); the model is

    y = sum_i b_i x_i + sum_{i<j} b_ij x_i x_j + sum_{i<j} g_ij x_i x_j (x_i - x_j) + sum_{i<j<k} b_ijk x_i x_j x_k

(linear blending, quadratic blending, full cubic). The linear terms are the pure-component values; the
others bend the surface between them. We fit it by ridge regression that leaves the linear terms
unpenalised, with the penalty chosen per response by exact leave-one-out error, so a handful of trials
gives a near-linear blend and more trials buy curvature. A bootstrap of the same fit gives a spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

PENALTIES = tuple(10.0 ** e for e in range(-8, 4))


def features(x: np.ndarray) -> np.ndarray:
    """The full-cubic Scheffé terms of mixtures ``x`` (n, K): K linear terms first, shape (n, F)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    k = x.shape[1]
    pairs = list(combinations(range(k), 2))
    cols = [x]
    if pairs:
        i, j = np.array(pairs).T
        cols += [x[:, i] * x[:, j], x[:, i] * x[:, j] * (x[:, i] - x[:, j])]
    if k >= 3:
        a, b, c = np.array(list(combinations(range(k), 3))).T
        cols.append(x[:, a] * x[:, b] * x[:, c])
    return np.hstack(cols)


def _solve(f: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    return np.linalg.solve(f.T @ f + np.diag(penalty), f.T @ y)


def _loo_error(f: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> float:
    """Mean squared leave-one-out error of a ridge fit (closed form through the hat matrix)."""
    inv = np.linalg.inv(f.T @ f + np.diag(penalty))
    hat = np.einsum("ij,jk,ik->i", f, inv, f)
    resid = y - f @ (inv @ (f.T @ y))
    denom = np.clip(1.0 - hat, 1e-6, None)
    return float(np.mean((resid / denom) ** 2))


@dataclass
class ScheffeModel:
    """One Scheffé ridge fit per response, with bootstrap members for a spread.

    Attributes:
        coef: (F, M) coefficients of the main fit.
        members: (B, F, M) bootstrap fits (B may be 0).
        k: Number of components.
    """

    coef: np.ndarray
    members: np.ndarray
    k: int

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, bootstrap: int = 16, seed: int = 0) -> ScheffeModel:
        """Fit mixtures ``x`` (n, K) to responses ``y`` (n, M); needs n >= 2."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        k = x.shape[1]
        raw = features(x)
        # each bending term scaled to unit root-mean-square over the data, so one penalty fits all orders
        scale = np.ones(raw.shape[1])
        rms = np.sqrt(np.mean(raw[:, k:] ** 2, axis=0))
        scale[k:] = np.where(rms > 1e-12, 1.0 / np.maximum(rms, 1e-12), 1.0)
        f = raw * scale
        shift = y.mean(axis=0)  # the linear terms sum to 1 on the simplex: a constant shift is exact
        yc = y - shift
        coef = np.empty((f.shape[1], y.shape[1]))
        chosen = []
        for m in range(y.shape[1]):
            best = min(PENALTIES, key=lambda lam: _loo_error(f, yc[:, m], _penalty(f.shape[1], k, lam)))
            chosen.append(_penalty(f.shape[1], k, best))
            coef[:, m] = _solve(f, yc[:, m], chosen[-1])
        coef *= scale[:, None]
        coef[:k] += shift  # fold the shift back into the linear terms
        rng = np.random.default_rng(seed)
        members = np.empty((bootstrap, f.shape[1], y.shape[1]))
        for b in range(bootstrap):
            rows = rng.integers(0, len(x), len(x))
            for m in range(y.shape[1]):
                members[b, :, m] = _solve(f[rows], yc[rows, m], chosen[m]) * scale
            members[b, :k] += shift
        return cls(coef, members, k)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) for mixtures ``x`` (n, K), each (n, M); the spread is the bootstrap standard
        deviation (zeros without bootstrap members)."""
        f = features(x)
        mean = f @ self.coef
        if not len(self.members):
            return mean, np.zeros_like(mean)
        spread = np.einsum("nf,bfm->bnm", f, self.members).std(axis=0)
        return mean, spread


def _penalty(width: int, k: int, lam: float) -> np.ndarray:
    """Ridge penalty per feature: a tiny one on the linear terms (keeps the system solvable when a bootstrap
    sample misses a pure component), ``lam`` on the others."""
    pen = np.full(width, lam)
    pen[:k] = 1e-6
    return pen
