"""What the Recommend page shows of a recommendation: its tables, the predicted-vs-measured figure, and the enqueue.

The fits themselves are cached in :mod:`app.state` (:func:`~app.state.recommendation`,
:func:`~app.state.in_sample_fit`), once per (study, finished trials, settings) for every session.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from app.figures import metric_unit
from app.state import Workspace
from demix_core.mixing.mixture import Mixture
from demix_core.search.predictor import Recommendation
from demix_core.search.study import enqueue, load_study
from demix_core.view import figures

WEIGHTINGS = ["composite", "average"]  # how the sampled mixtures are ranked


def mixture_frame(rec: Recommendation) -> pd.DataFrame:
    """The recommended mixture: one row per component and its weight."""
    return pd.DataFrame({"component": list(rec.mixture.names), "weight": list(rec.mixture.weights)})


def fit_line(rec: Recommendation, weighting: str) -> str:
    """How the recommendation was made, in one line."""
    return (f"{rec.regressor} per metric, fit on {rec.trials:,} trials; top {rec.top_k:,} of {rec.samples:,} "
            f"ranked by {weighting}.")


def prediction_frame(rec: Recommendation) -> pd.DataFrame:
    """Per target: the recommendation's predicted score, its unit (a domain's score is negated bits per byte, a
    benchmark's ``bpb`` is bits per byte) and the predictor's held-out Spearman."""
    return pd.DataFrame([{"target": k, "predicted": rec.predicted[k], "unit": metric_unit(k),
                          "held-out Spearman": rec.spearman[k]} for k in rec.predicted])


def neighbours_frame(rec: Recommendation) -> pd.DataFrame:
    """The top-ranked sampled mixtures (weights and rank score)."""
    return pd.DataFrame([{**n["mixture"], "rank score": n["score"]} for n in rec.neighbours])


def fit_figure(domain: str, predicted: Sequence[float], measured: Sequence[float]) -> go.Figure:
    """Predicted against measured scores of the study's trials in one domain, with the identity line."""
    unit = f"{domain} score ({figures.SCORE_UNIT})"
    return figures.scatter_with_identity(predicted, measured, x_title=f"predicted {unit}", y_title=f"measured {unit}",
                                         title=f"{domain} (in-sample)")


def enqueue_recommendation(ws: Workspace, study: str, storage: str, mixture: Mixture) -> None:
    """Queue the recommended mixture in ``study``: the next free worker scores it.

    Raises:
        BudgetError: The mixture lies outside the study's feasible set.
    """
    enqueue(load_study(ws, study, storage=storage), mixture, source="recommendation")
