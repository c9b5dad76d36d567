"""Recommend page: the DeMix predictor on a study's trials, its recommendation, and how far to trust it."""

from __future__ import annotations

import streamlit as st

from app.auth import can_edit, require_edit
from app.errors import DemixError
from app.figures import score_note
from app.jobs import train_recommendation
from app.mixture_download import mixture_download
from app.recommending import (
    WEIGHTINGS,
    enqueue_recommendation,
    fit_figure,
    fit_line,
    mixture_frame,
    neighbours_frame,
    prediction_frame,
)
from app.state import (
    Workspace,
    current_workspace,
    finished_trials,
    in_sample_fit,
    md,
    recommendation,
    study_names,
    study_picker,
)
from app.table_fits import NUMBERS, advice, advice_frame, families_line, fitted, held_out_figure, noise_note
from app.tables import IMPORT_HINT, no_checkpoints
from app.tour import wait_for


def table_recommendation(ws: Workspace, study: str, rec, *, top_k: int, samples: int,  # noqa: ANN001
                         weighting: str) -> None:
    """A table study's recommendation (``rec``) in the table's terms: predicted scores as the table writes them,
    each fit's out-of-fold Spearman and label, the noise floor; the out-of-fold fit per metric; the download."""
    root, storage = str(ws.root), ws.storage_url()
    table = advice(root, storage, study, finished_trials(root, storage, study), top_k=top_k, samples=samples,
                   weighting=weighting)
    if table is not None:
        st.dataframe(advice_frame(table), hide_index=True, key="rec_pred", column_config=NUMBERS)
        families = families_line(table)
        if families:
            st.caption(families)
        st.info(noise_note(table), icon=":material/graphic_eq:")
    fit = fitted(root, storage, study)
    if not isinstance(fit, str) and fit.targets:
        names = [t.name for t in fit.targets]
        pick = st.selectbox("Out-of-fold fit of", names, key="rec_domain")
        st.plotly_chart(held_out_figure(fit, fit.targets[names.index(pick)]), key="rec_scatter")
    st.subheader("Neighbours (top-ranked sampled mixtures)")
    st.dataframe(neighbours_frame(rec), hide_index=True, key="rec_neighbours")
    st.subheader("Train with it")
    mixture_download(ws, rec.mixture, key="rec_export")
    st.caption(no_checkpoints("the recommendation cannot be queued or trained as a reference here: train it with "
                              "the config above, then import the run with `demix import-runs --references`"))


st.title("Recommend")
ws = current_workspace()
if ws is None:
    st.stop()
names = study_names(ws)
if not names and wait_for(ws.root, "study", "the tour's study: the predictor fits on its trials", key="rec_wait"):
    st.stop()
if not names:
    st.info(f"No study yet: {IMPORT_HINT}" if ws.is_table else
            "No study yet: create one on the Study page and let a worker finish some trials first.")
    st.stop()
study_name = study_picker(names) or names[0]
st.subheader(f"Study {md(study_name)}")
c1, c2, c3 = st.columns(3)
top_k = c1.number_input("Top-k averaged", 1, 10_000, 128, key="top_k")
samples = c2.number_input("Mixtures ranked", 1000, 1_000_000, 100_000, step=10_000, key="samples")
weighting = c3.selectbox("Ranking", WEIGHTINGS, key="weighting")

if st.button("Run the predictor", key="run_rec") or st.session_state.get("rec") == study_name:
    root, storage = str(ws.root), ws.storage_url()
    finished = finished_trials(root, storage, study_name)
    try:
        rec = recommendation(root, storage, study_name, finished, top_k=int(top_k), samples=int(samples),
                             weighting=weighting)
    except DemixError as exc:
        st.warning(str(exc))
        st.stop()
    st.session_state["rec"] = study_name
    st.subheader("Recommended mixture")
    st.dataframe(mixture_frame(rec), hide_index=True, key="rec_mixture")
    st.caption(fit_line(rec, weighting))
    if ws.is_table:
        table_recommendation(ws, study_name, rec, top_k=int(top_k), samples=int(samples), weighting=weighting)
        st.stop()
    st.dataframe(prediction_frame(rec), hide_index=True, key="rec_pred")
    st.caption(score_note(rec.predicted))
    domains, predicted, measured = in_sample_fit(root, storage, study_name, finished)
    pick = st.selectbox("Predicted vs measured for", domains, key="rec_domain")
    st.plotly_chart(fit_figure(pick, predicted[pick], measured[pick]), key="rec_scatter")
    st.subheader("Neighbours (top-ranked sampled mixtures)")
    st.dataframe(neighbours_frame(rec), hide_index=True, key="rec_neighbours")
    st.subheader("Train with it")
    mixture_download(ws, rec.mixture, key="rec_export")
    if can_edit() and st.button("Enqueue the recommendation", key="rec_enqueue", icon=":material/playlist_add:"):
        require_edit()
        enqueue_recommendation(ws, study_name, storage, rec.mixture)
        st.success(f"Queued {rec.mixture.label(2)} in {md(study_name)}.")
    st.subheader("Does it win when trained?")
    st.caption("Train the recommended mixture like the references (and the simple baselines beside it); the "
               "Validate page then ranks them among the references.")
    train_recommendation(ws, study_name, storage, top_k=int(top_k), samples=int(samples), weighting=weighting,
                         key="rec_train")
