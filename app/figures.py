"""The figure sets the Study and Mixer pages draw, by key, and the column names as people read them.

The figures are built in the core (:mod:`demix_core.view.figures`, the same pictures as the HTML report); pages only
place them. Keys: ``front:<x>|<y>``, ``front3d``, ``ternary``, ``hypervolume``, ``parcoords``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from demix_core.mixing.bounds import Bounds
from demix_core.view import figures

__all__ = ["SCORE_UNIT", "front_key", "metric_unit", "mixture_figure_set", "plain_name", "score_columns",
           "rounded_distance", "score_note", "study_figure_set", "weight_columns"]

plain_name = figures.plain_name  # ``d:math`` -> ``math score``, for a selectbox's format_func and table headers
SCORE_UNIT = figures.SCORE_UNIT  # the unit of a merged study's domain scores, on the fronts' axes
# The suites' metrics (demix_core.evaluate.suite: the quick suite's bpb; the paper suite's bpb, acc, acc_norm), as
# the benchmark tables show them: raw, each in its own direction.
METRIC_WORDS = {"bpb": ("bits per byte", "lower is better"), "acc": ("accuracy, 0 to 1", "higher is better"),
                "acc_norm": ("length-normalised accuracy, 0 to 1", "higher is better")}
DOMAIN_NOTE = ("Domain scores are negated bits per byte (each domain's mean over its benchmarks, sign-flipped): "
               "higher is better, 0 is perfect; the studies maximise them.")


def score_note(benchmarks: Iterable[str] = ()) -> str:
    """The one note on the scores' sign, beside every score table and chart of a workspace of checkpoints: domain
    scores are negated bits per byte; the benchmark metrics among ``benchmarks`` (``task/metric`` keys) are shown as
    measured, each with its unit and direction."""
    metrics = dict.fromkeys(key.rpartition("/")[2] for key in benchmarks if "/" in key)
    if not metrics:
        return DOMAIN_NOTE
    words = "; ".join(f"{m}: " + ", ".join(METRIC_WORDS.get(m, ("as lm-eval reports it",))) for m in metrics)
    return f"{DOMAIN_NOTE} Benchmark metrics are shown as measured ({words})."


def rounded_distance(near: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A nearest-trials table with its ``distance`` column rounded to ``digits`` decimals (a trial at the mixture
    itself reads 0, not 1e-16)."""
    return near.assign(distance=near["distance"].round(digits)) if "distance" in near else near


def metric_unit(key: str) -> str:
    """A score's unit and direction: a domain's (``math``: negated bits per byte), or a benchmark metric's
    (``math/bpb``: bits per byte)."""
    if "/" not in key:
        return f"{SCORE_UNIT}, higher is better"
    unit, direction = METRIC_WORDS.get(key.rpartition("/")[2], ("as measured", "see the metric"))
    return f"{unit}, {direction}"


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
