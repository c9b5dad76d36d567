"""What the Recommend page shows of a recommendation: its tables, the predicted-vs-measured figure, the enqueue, and
"Beat the mixture you have" (the mixture to beat, the pick, and the screen's margins per domain).

The fits themselves are cached in :mod:`app.state` (:func:`~app.state.recommendation`,
:func:`~app.state.in_sample_fit`), once per (study, finished trials, settings) for every session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.figures import metric_unit
from app.state import Workspace
from demix_core.mixing.mixture import Mixture
from demix_core.search.against import NATURAL, UNIFORM, parse_target
from demix_core.search.picks import BEATS, DEFAULT_CONFIDENCE, PICKS
from demix_core.search.predictor import Recommendation
from demix_core.search.study import enqueue, load_study
from demix_core.view import figures

__all__ = ["BEATS", "BEAT_WORDS", "DEFAULT_CONFIDENCE", "GIVEN", "NONE", "PICKS", "PICK_WORDS", "TARGETS",
           "WEIGHTINGS", "against_frame", "against_spec", "enqueue_recommendation", "fit_figure", "fit_line",
           "mixture_frame", "neighbours_frame", "pick_note", "prediction_frame", "target_words"]

WEIGHTINGS = ["composite", "average"]  # how the sampled mixtures are ranked
GIVEN = "given"  # the mixture to beat is typed in (name=w,...)
NONE = "none"  # no mixture to beat: the plain recommendation
TARGETS = [NATURAL, UNIFORM, GIVEN, NONE]  # the choices of "Mixture to beat", the default first
PICK_WORDS = {"mean": "mean of the top k", "best": "best candidate", "trial": "best measured trial"}
BEAT_WORDS = {"every": "every domain", "some": "some domain, losing none", "total": "weighted total"}


def target_words(ws: Workspace, choice: str) -> str:
    """A choice of the mixture to beat as the page lists it: ``natural (alpha=0.17 beta=0.33 gamma=0.50)``."""
    if choice in (NATURAL, UNIFORM):
        return parse_target(choice, ws.component_names, [c.tokens for c in ws.components]).describe()
    return {GIVEN: "a mixture I give", NONE: "no mixture to beat (the plain recommendation)"}[choice]


def against_spec(ws: Workspace, choice: str, given: str = "") -> str | None:
    """What ``recommend --against`` gets for a choice of :data:`TARGETS` (None: no mixture to beat); a given mixture
    is checked here, so the page says what is wrong before any fit.

    Raises:
        ConfigError: A given mixture that is not ``name=w,...`` over the components (one line).
    """
    if choice == NONE:
        return None
    if choice != GIVEN:
        return choice
    parse_target(given, ws.component_names, [c.tokens for c in ws.components])
    return given.strip()


def against_frame(judged: Mapping[str, Any]) -> pd.DataFrame:
    """Per domain, the pick against the target (``Recommendation.against``): its predicted gain, the lower bound of
    that gain at the confidence asked, the noise floor it has to reach (None when unknown: the screen then takes 0),
    and whether it does (``yes`` / ``no``)."""
    known = bool(judged.get("floor_known"))
    return pd.DataFrame([{"domain": d, "predicted gain": m["gain"], "lower bound": m["lower"],
                          "noise floor": m["floor"] if known else None,
                          "passes": "yes" if m["lower"] >= m["floor"] else "no"} for d, m in judged["at"].items()])


def pick_note(judged: Mapping[str, Any]) -> str | None:
    """Why the pick itself may miss the screen its candidates passed (None when it clears it)."""
    if judged["pick_qualifies"]:
        return None
    return ("The pick averages candidates that qualify but does not clear the screen itself; the pick "
            f"\"{PICK_WORDS['best']}\" takes the single best qualifying candidate.")


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
