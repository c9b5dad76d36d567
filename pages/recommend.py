"""Recommend page: the DeMix predictor on a study's trials, its recommendation, and how far to trust it; "Beat the
mixture you have" keeps only candidates expected to beat a mixture (natural, to begin with) beyond noise."""

from __future__ import annotations

import streamlit as st

from app.auth import can_edit, require_edit
from app.errors import DemixError
from app.figures import score_note
from app.jobs import train_recommendation
from app.mixer import MIXTURE_KEY
from app.mixture_download import mixture_download
from app.recommending import (
    BEAT_WORDS,
    BEATS,
    DEFAULT_CONFIDENCE,
    GIVEN,
    NONE,
    PICK_WORDS,
    PICKS,
    TARGETS,
    WEIGHTINGS,
    against_frame,
    against_spec,
    enqueue_recommendation,
    fit_figure,
    fit_line,
    mixture_frame,
    neighbours_frame,
    pick_note,
    prediction_frame,
    target_words,
)
from app.state import (
    Workspace,
    current_workspace,
    finished_trials,
    in_sample_fit,
    md,
    noise_floor,
    recommendation,
    study_names,
    study_picker,
)
from app.table_fits import NUMBERS, advice, advice_frame, families_line, fitted, held_out_figure, noise_note
from app.tables import IMPORT_HINT, no_checkpoints
from app.tour import wait_for


def table_recommendation(ws: Workspace, study: str, rec) -> None:  # noqa: ANN001
    """A table study's recommendation (``rec``) in the table's terms: predicted scores as the table writes them,
    each fit's out-of-fold Spearman and label, the noise floor; the out-of-fold fit per metric; the download."""
    root, storage = str(ws.root), ws.storage_url()
    table = advice(root, storage, study, finished_trials(root, storage, study), rec.predicted, rec.spearman)
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


def against_settings(ws: Workspace) -> tuple[str | None, float, str, str]:
    """"Beat the mixture you have": (the mixture to beat as ``recommend --against`` takes it, or None; the
    confidence; every domain or the weighted total; the pick). A given mixture that does not parse stops the page
    with one error line."""
    st.subheader("Beat the mixture you have")
    choice = st.radio("Mixture to beat", TARGETS, format_func=lambda c: target_words(ws, c), key="rec_against",
                      horizontal=True, help="Keep only the candidates the predictor expects to beat this mixture by "
                                            "at least the noise floor; natural weighs each dataset by its tokens")
    given = ""
    if choice == GIVEN:
        names = ws.component_names
        given = st.text_input("The mixture you train today (name=w,...)", key="rec_against_given",
                              value=st.session_state.get(MIXTURE_KEY) or "",
                              placeholder=f"{names[0]}=0.7,{names[-1]}=0.3",
                              help="Weights per component (they are normalised); the Mixer's mixture to begin with")
    c1, c2, c3 = st.columns(3)
    off = choice == NONE
    confidence = c1.slider("Confidence", 0.5, 0.95, DEFAULT_CONFIDENCE, 0.05, key="rec_confidence", disabled=off,
                           help="One-sided level of the lower bound on each predicted gain, from the predictor's "
                                "out-of-fold error (0.5: judge on the predicted gain itself)")
    beat = c2.radio("Beat it on", BEATS, format_func=BEAT_WORDS.__getitem__, key="rec_beat", disabled=off,
                    help="Every domain by its floor; one domain by its floor while losing none beyond it; or the "
                         "equally weighted total of domains")
    pick = c3.selectbox("Pick", PICKS, format_func=PICK_WORDS.__getitem__, key="rec_pick",
                        help="The mixture recommended: the mean of the top k qualifying candidates (the paper), the "
                             "single best candidate, or the best trial measured")
    if choice == GIVEN and not given.strip():
        st.info("Type the mixture you train today as name=w,... to beat it.")
        st.stop()
    try:
        spec = against_spec(ws, choice, given)
    except DemixError as exc:
        st.error(str(exc))
        st.stop()
    return spec, round(float(confidence), 2), beat, pick


def against_result(judged: dict, source: str) -> None:
    """The screen against the mixture to beat: its sentence, where the floor comes from, the pick per domain."""
    st.success(md(judged["summary"]) + ".", icon=":material/trending_up:")
    st.caption(f"Noise floor: {source}.")  # the core's sentence; a command in it shows as code
    target = "the mixture you gave" if judged["target"] == "current" else judged["target"]
    st.caption(f"Per domain, the pick's predicted gain over {target}, its {judged['confidence']:.0%} lower bound and "
               "the noise floor that bound has to reach:")
    st.dataframe(against_frame(judged), hide_index=True, key="rec_against_table",
                 column_config={c: st.column_config.NumberColumn(format="%+.4f")
                                for c in ("predicted gain", "lower bound")})
    if judged.get("total"):
        st.caption("Judged on the equally weighted total of domains; the rows show each domain for reading.")
    note = pick_note(judged)
    if note:
        st.caption(note)


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
against, confidence, beat, pick = against_settings(ws)

if st.button("Run the predictor", key="run_rec") or st.session_state.get("rec") == study_name:
    root, storage = str(ws.root), ws.storage_url()
    finished = finished_trials(root, storage, study_name)
    floor, source = noise_floor(ws, study_name) if against is not None else (None, "")
    try:
        rec = recommendation(root, storage, study_name, finished, top_k=int(top_k), samples=int(samples),
                             weighting=weighting, pick=pick, against=against, confidence=confidence, beat=beat,
                             floor=floor)
    except DemixError as exc:
        st.warning(str(exc))
        st.stop()
    st.session_state["rec"] = study_name
    if isinstance(rec, dict):  # nothing is expected to beat the mixture: which domain blocks, and no mixture
        st.warning(md(rec["summary"]) + ".", icon=":material/block:")
        st.caption(f"Noise floor: {source}.")
        st.stop()
    st.subheader("Recommended mixture")
    st.dataframe(mixture_frame(rec), hide_index=True, key="rec_mixture")
    st.caption(fit_line(rec, weighting))
    if rec.against is not None:
        against_result(rec.against, source)
    if ws.is_table:
        table_recommendation(ws, study_name, rec)
        st.stop()
    st.dataframe(prediction_frame(rec), hide_index=True, key="rec_pred")
    st.caption(score_note(rec.predicted))
    domains, predicted, measured = in_sample_fit(root, storage, study_name, finished)
    shown = st.selectbox("Predicted vs measured for", domains, key="rec_domain")
    st.plotly_chart(fit_figure(shown, predicted[shown], measured[shown]), key="rec_scatter")
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
                         pick=pick, against=against, confidence=confidence if against else None,
                         beat=beat if against else None, key="rec_train")
