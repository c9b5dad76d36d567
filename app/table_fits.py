"""The predictor fitted on a table study, as the Mixer and Recommend pages of a table workspace show it.

The fit (:class:`~demix_core.runs.fit.TableFit`) is cached per (study, finished runs) for every session, so a slider
move costs one prediction on one row (milliseconds). Its table gives per metric the predicted score as the table
writes it, ± the fit's out-of-fold RMS error, which way is better, the out-of-fold Spearman and the fit label
(:func:`~demix_core.runs.advice.fit_label`). The recommendation's advice (raw predictions, fit labels, the noise
floor) is :func:`~demix_core.runs.advice.table_advice`, as ``demix recommend`` prints it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.figures import plain_name, rounded_distance
from app.state import finished_trials, md
from app.tables import no_checkpoints
from demix_core.errors import DemixError
from demix_core.runs.advice import FIT_LABELS, UNTRUSTED, TableAdvice, fit_label, table_advice
from demix_core.runs.fit import TableFit, TargetFit
from demix_core.runs.table_study import score_key
from demix_core.search.nearest import nearest_trials
from demix_core.search.study import load_study
from demix_core.view import figures
from demix_core.workspace.manifest import load_workspace

NUMBERS = {**{c: st.column_config.NumberColumn(format="%.4f", width="small") for c in ("predicted", "±")},
           "out-of-fold Spearman": st.column_config.NumberColumn(format="%.2f")}
RAW = "b:" + score_key("")  # a trial table's column of a metric's raw score: b:metric/<name>
FIT_WORDS = (", ".join(f"≥ {low} {label}" for low, label in FIT_LABELS) + f", below: {UNTRUSTED}")


@st.cache_resource(show_spinner="Fitting the predictor on the study's runs...", max_entries=32)
def table_fit(root: str, storage: str, study: str, finished: int) -> TableFit:
    """The predictor fitted on a table study, once per (study, finished runs) for every session (``finished`` is
    only a cache key: a new import makes a new fit)."""
    return TableFit.fit(load_study(load_workspace(root), study, storage=storage))


def fitted(root: str, storage: str, study: str) -> TableFit | str:
    """The study's fit, or why there is none (one line: too few runs, not a study of imported runs)."""
    try:
        return table_fit(root, storage, study, finished_trials(root, storage, study))
    except DemixError as exc:
        return str(exc)


def _rho(value: float) -> float | None:
    return None if math.isnan(value) else value


def prediction_frame(fit: TableFit, predicted: Mapping[str, float]) -> pd.DataFrame:
    """Per metric (then per family objective): the predicted score, ± the out-of-fold RMS error, which way is
    better, the out-of-fold Spearman and the fit label."""
    return pd.DataFrame([{"metric": t.name, "predicted": predicted[t.key], "±": t.error, "direction": t.direction,
                          "out-of-fold Spearman": _rho(t.spearman), "fit": t.label} for t in fit.targets])


def objective_scores(fit: TableFit, predicted: Mapping[str, float]) -> dict[str, float]:
    """The predicted objectives (oriented: higher is better), to mark the mixture on the study's fronts."""
    return {o: predicted[o] for o in fit.objectives if o in predicted}


def fit_caption(fit: TableFit) -> str:
    """Where the predictions come from and how to read ± and the fit label (markdown-safe)."""
    return (f"**predicted** by the {fit.predictor.kind} regressors fitted on {fit.runs} runs of study {md(fit.study)}; "
            f"± is each fit's out-of-fold RMS error; fit, from the out-of-fold Spearman: {FIT_WORDS}.")


def unmeasured_note() -> str:
    """The one line where the Mixer of a workspace of checkpoints shows measured scores."""
    return no_checkpoints("nothing is measured here: the nearest imported runs below hold the measured scores")


def nearest_runs(done: pd.DataFrame, weights: Mapping[str, float], keys: Mapping[int, str]) -> pd.DataFrame:
    """The five imported runs nearest the mixture (L1 distance of the weights): run key, weights, raw scores."""
    near = nearest_trials(done, weights, k=5)
    if near.empty:
        return near
    out = pd.DataFrame({"distance": rounded_distance(near)["distance"],
                        "run": [keys.get(int(n), "") for n in near["number"]]})
    for c in near.columns:
        if c.startswith("w:"):
            out[plain_name(c)] = near[c]
        elif c.startswith(RAW):
            out[c[len(RAW):]] = near[c]
    return out


def held_out_figure(fit: TableFit, target: TargetFit) -> go.Figure:
    """Out-of-fold predicted against measured scores of one metric over the study's runs, with the identity line."""
    predicted, measured = fit.held_out(target.key)
    rho = "n/a" if math.isnan(target.spearman) else f"{target.spearman:.2f}"
    return figures.scatter_with_identity(predicted, measured, x_title=f"predicted {target.name} (out-of-fold)",
                                         y_title=f"measured {target.name}",
                                         title=f"{target.name}: out-of-fold Spearman {rho} ({target.label})")


@st.cache_data(show_spinner="Reading the recommendation against the runs...", max_entries=32)
def advice(root: str, storage: str, study: str, finished: int, predicted: dict[str, float],
           spearman: dict[str, float]) -> TableAdvice | None:
    """The advice on a table study's recommendation (its ``predicted`` scores and the fits' ``spearman``, from
    :func:`~app.state.recommendation`): raw predictions, fit per target, noise floor; None when the study holds no
    imported runs. Cached per (study, finished runs, recommendation)."""
    return table_advice(load_study(load_workspace(root), study, storage=storage), predicted, spearman)


def advice_frame(table: TableAdvice) -> pd.DataFrame:
    """Per metric: the recommendation's predicted score as the table writes it, which way is better, the
    out-of-fold Spearman of its fit and the fit label."""
    rows = []
    for m, v in table.predicted.items():
        rho = table.spearman.get(m, math.nan)
        rows.append({"metric": m, "predicted": v, "direction": "higher is better" if table.higher[m]
                     else "lower is better", "out-of-fold Spearman": _rho(rho), "fit": fit_label(rho)})
    return pd.DataFrame(rows)


def families_line(table: TableAdvice) -> str | None:
    """The fit of each objective that averages a family of metrics, in one line (None without families)."""
    families = {t: r for t, r in table.spearman.items() if t not in table.predicted}
    if not families:
        return None
    return "Objectives averaging several metrics: " + ", ".join(
        f"{md(t)} out-of-fold Spearman {r:.2f} ({fit_label(r)})" for t, r in families.items()) + "."


def noise_note(table: TableAdvice) -> str:
    """The noise floor and what it says of the recommendation, in one line (markdown-safe)."""
    line = table.noise_line()
    if line is None:
        return ("No mixture was run more than once, so there is no noise floor to read the predicted gains "
                "against.")
    return md(line[0].upper() + line[1:])
