"""A study's finished trials closest to a mixture (the Mixer's "nearest trials" table)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def nearest_trials(done: pd.DataFrame, weights: Mapping[str, float], *, k: int = 5) -> pd.DataFrame:
    """The ``k`` finished trials whose mixtures are closest to ``weights`` (L1 distance over the components).

    Args:
        done: Complete trials with ``number`` and ``w:<component>`` columns (``trials_frame``).
        weights: The mixture, ``{component: weight}``.
        k: How many.

    Returns:
        Those rows, nearest first, with a ``distance`` column (L1, 0 to 2) in front; empty without trials.
    """
    wcols = [f"w:{n}" for n in weights]
    if done.empty or not all(c in done for c in wcols):
        return pd.DataFrame(columns=["distance", "number"])
    x = done[wcols].to_numpy(dtype=float)
    ok = np.isfinite(x).all(axis=1)
    dist = np.abs(x - np.array([weights[n] for n in weights])[None, :]).sum(axis=1)
    dist[~ok] = np.inf
    order = np.argsort(dist, kind="stable")[:k]
    order = order[np.isfinite(dist[order])]
    out = done.iloc[order].copy()
    out.insert(0, "distance", dist[order])
    return out.reset_index(drop=True)
