"""The figure sets the Study and Mixer pages draw, by key, and the column names as people read them.

The figures are built in the core (:mod:`demix_core.view.figures`, the same pictures as the HTML report); pages only
place them. Keys: ``front:<x>|<y>``, ``front3d``, ``ternary``, ``hypervolume``, ``parcoords``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from demix_core.mixing.bounds import Bounds
from demix_core.view import figures

__all__ = ["SCORE_UNIT", "front_key", "mixture_figure_set", "plain_name", "score_columns", "study_figure_set",
           "weight_columns"]

plain_name = figures.plain_name  # ``d:math`` -> ``math score``, for a selectbox's format_func and table headers
SCORE_UNIT = figures.SCORE_UNIT  # the unit of a merged study's domain scores, on the fronts' axes


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's domain-score columns (``d:<domain>``), in order."""
    return [c for c in frame.columns if c.startswith("d:")]


def weight_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's weight columns (``w:<component>``), in order."""
    return [c for c in frame.columns if c.startswith("w:")]


def front_key(pair: tuple[str, str]) -> str:
    """The key of the 2D front of ``(x, y)`` in a figure set."""
    return f"front:{pair[0]}|{pair[1]}"


def study_figure_set(done: pd.DataFrame, *, pairs: Sequence[tuple[str, str]], color: str | None,
                     bounds: Bounds | None, unit: str = figures.SCORE_UNIT) -> dict[str, Any]:
    """A study's figures by key (see :func:`demix_core.view.figures.study_figures`; ``unit``: the scores' unit)."""
    return {f.key: f.figure for f in figures.study_figures(done, pairs=pairs, color=color, bounds=bounds, unit=unit)}


def mixture_figure_set(done: pd.DataFrame, weights: Sequence[float], scores: dict[str, float], *,
                       pair: tuple[str, str] | None, front3d: bool, bounds: Bounds, label: str = "this mixture",
                       unit: str = figures.SCORE_UNIT) -> dict[str, Any]:
    """A study's fronts and mixture map with one mixture marked (as ``label``), by key (see
    :func:`demix_core.view.figures.mixture_figures`); a trivial ``bounds`` shades nothing."""
    return {f.key: f.figure for f in figures.mixture_figures(done, list(weights), scores, pair=pair, front3d=front3d,
                                                              label=label, bounds=None if bounds.trivial else bounds,
                                                              unit=unit)}
