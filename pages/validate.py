"""Validate page: both proxy kinds against reference models, beside the baselines; the proxy to trust; the trained
recommendation and baselines among the references; why, in words. With fewer than 3 references, editors train a set
of them here; with a study, its recommendation and the baselines.

Validation runs as a background job (``demix validate``, progress from its log); its report and pick are read
from ``<workspace>/validation/<suite>.json``, so a reload, another session or a viewer sees the last result.
"""

from __future__ import annotations

import streamlit as st

from app.auth import can_edit
from app.benchmarks import paper_benchmarks_ready
from app.figures import score_note
from app.jobs import REFERENCES_KIND, job_panel, start, train_recommendation, train_references
from app.state import Workspace, current_workspace, md, selected_study, study_names
from app.table_validating import fit_lines, method_figures, validation
from app.table_validating import summary_frame as table_summary_frame
from app.tables import references_frame
from app.tour import TOUR_STAGE, wait_for, waiting
from app.validating import (
    MIN_REFERENCES,
    SUITES,
    calls_figures,
    loop_figure,
    loop_frame,
    noise_known,
    noise_words,
    proxy_figures,
    proxy_tabs,
    read_validation,
    record_name,
    reference_frame,
    summary_frame,
    trained_references,
    trust_note,
    why,
)

PER_ROW = 3  # scatter plots side by side


def table_validate(ws: Workspace) -> None:
    """A table workspace: each study's predictor ("regression on S") ranks the references; per metric rho and pairwise
    accuracy with intervals, beside the weight-only null; the verdict; the scatter per metric."""
    refs = trained_references(ws)
    if len(refs) < MIN_REFERENCES:
        st.info(f"This table workspace has {len(refs)} references; validation needs at least {MIN_REFERENCES}. Import "
                "runs at a larger scale with `demix import-runs --workspace W --references --mixtures M.csv --scores "
                "S.csv`.")
        return
    data = validation(ws)
    if isinstance(data, str):
        st.warning(data)
        return
    st.caption(f"{len(data['references'])} references, {len(data['domains'])} metrics (oriented: higher is better); "
               "the predictor fitted on each study ranks them, as `demix validate` computes it (nothing is written).")
    st.markdown(f"**{md(data['verdict'])}**")
    st.dataframe(table_summary_frame(data), key="val_summary")
    for line in fit_lines(data):
        st.caption(line)
    names = [m["name"] for m in data["methods"]]
    for tab, name in zip(st.tabs(names), names):
        with tab:
            shown = method_figures(data, name)
            for start in range(0, len(shown), PER_ROW):
                for col, (d, fig) in zip(st.columns(PER_ROW), shown[start:start + PER_ROW]):
                    col.plotly_chart(fig, key=f"val_{name}_{d}")
    st.subheader("References, as imported")
    st.dataframe(references_frame(ws), hide_index=True, key="val_table")


def loop_calls(data: dict, loop: dict) -> None:
    """Per domain, the trained recommendation minus each baseline with its interval, over the noise floor's band;
    the floor in words, or why the noise is unknown and the command that measures it."""
    shown = calls_figures(loop)
    for i in range(0, len(shown), PER_ROW):
        for col, (d, fig) in zip(st.columns(PER_ROW), shown[i:i + PER_ROW]):
            col.plotly_chart(fig, key=f"val_calls_{d}")
    if noise_known(data):
        st.caption(noise_words(data))
    else:
        st.info(noise_words(data), icon=":material/graphic_eq:")


def loop_training(ws: Workspace) -> None:
    """"Train the recommendation and baselines" of a study (``demix recommend --train``), once a study exists."""
    names = study_names(ws)
    if not names or ws.training_problem():
        return
    st.subheader("Train the recommendation and baselines")
    st.caption("The study's recommended mixture and the simple baselines (uniform, natural, best trial, null pick), "
               "trained like the references; validation then ranks them among the references.")
    chosen = selected_study(names) or names[0]  # the study picked on another page, to begin with
    study = st.selectbox("Study", names, index=names.index(chosen), key="val_loop_study") if can_edit() else chosen
    train_recommendation(ws, study, ws.storage_url(), key="val_loop", label="Train the recommendation and baselines")


st.title("Validate")
ws = current_workspace()
if ws is None:
    st.stop()
if ws.is_table:
    table_validate(ws)
    st.stop()
refs = trained_references(ws)
if len(refs) < MIN_REFERENCES and wait_for(ws.root, "references", "the tour's reference models (models really "
                                           "trained on sampled mixtures)", key="val_wait_refs"):
    st.stop()
if len(refs) < MIN_REFERENCES:
    st.info(f"This workspace has {len(refs)} reference models; validation needs at least {MIN_REFERENCES}.")
    train_references(ws, key="val_refs")
    loop_training(ws)
    st.stop()
job_panel(str(ws.root), REFERENCES_KIND, key="val_refs_job")  # a set still training once 3 of it have landed
suite = st.selectbox("Suite", SUITES, key="val_suite")
kind = f"validate-{suite}"
if can_edit():
    if suite == "paper" and not paper_benchmarks_ready("val_prepare"):
        st.stop()
    if st.button("Run validation", key="run_val", icon=":material/play_arrow:",
                 help="Scores every reference, both proxy kinds and the baselines in the background"):
        start(ws, kind, ["validate", "--workspace", str(ws.root), "--suite", suite],
              title=f"validation on the {suite} suite")
job_panel(str(ws.root), kind, key="val_job")
if read_validation(ws, suite) is None and wait_for(ws.root, TOUR_STAGE[suite], f"the tour's validation on the {suite} "
                                                   "suite", key="val_wait_record"):
    st.stop()


@st.fragment(run_every=5)
def result() -> None:
    data = read_validation(ws, suite)
    if data is None:
        st.info(f"No validation on the {suite} suite yet" + (": run it above." if can_edit() else "."))
        return
    pick = data.get("pick")
    st.caption(f"Last run {data.get('written', '?')}, {len(data['references'])} references "
               f"(`{record_name(ws, suite)}`).")
    loop = data.get("loop")
    if loop and loop.get("entries"):  # the answer first: does the trained recommendation win, and which proxy to trust
        st.info(loop["verdict"], icon=":material/emoji_events:")
    if pick:
        st.success(trust_note(pick), icon=":material/verified:")
    st.markdown(f"**{data['verdict']}**")
    st.dataframe(summary_frame(data), key="val_summary")
    proxies = proxy_tabs(data)
    tabs = st.tabs([f"{k}: {name}" for k, name in proxies.items()])
    for tab, (k, name) in zip(tabs, proxies.items()):
        with tab:
            cols = st.columns(len(data["domains"]))
            for col, (d, fig) in zip(cols, proxy_figures(data, k, name)):
                col.plotly_chart(fig, key=f"val_{k}_{d}")
    st.caption(score_note())
    st.subheader("Does the recommendation win when trained?")
    if loop and loop.get("entries"):
        st.plotly_chart(loop_figure(loop), key="val_loop")
        loop_calls(data, loop)
        st.dataframe(loop_frame(loop), hide_index=True, key="val_loop_table")
        st.markdown(f"**{loop['verdict']}**")
    elif loop:
        st.info(loop["verdict"])
    elif waiting(ws.root, "verdict"):
        st.info("Waiting for the tour: it trains the recommendation and the baselines, then validates again; the "
                "verdict appears here (progress on the Workspace page).", icon=":material/hourglass_top:")
    else:
        st.info("No trained recommendation yet: train a study's recommendation and the baselines (below, on the "
                "Recommend page or with `demix recommend --train`), then run validation again.")
    words = why(data)
    if words is not None:
        st.markdown(words, help="Read from this validation's numbers")
    st.dataframe(reference_frame(data), hide_index=True, key="val_table")


result()
loop_training(ws)
