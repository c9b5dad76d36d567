"""Study page: choose or create a study, run local workers with a trial budget, watch the fronts live."""

from __future__ import annotations

import streamlit as st

from app.auth import can_edit, require_edit
from app.errors import DemixError
from app.figures import SCORE_UNIT, front_key, plain_name, score_columns, score_note, study_figure_set, weight_columns
from app.state import (
    Workspace,
    complete_trials,
    current_workspace,
    feasible_set,
    md,
    remember_study,
    sampler_names,
    study_names,
    study_picker,
    trials,
)
from app.studies import (
    DEFAULT_SAMPLER,
    counts_line,
    last_report,
    new_study,
    open_in_mixer,
    remember_report,
    shown_trials,
    write_report,
)
from app.tables import IMPORT_HINT, UNIT, metric_frame, no_checkpoints, orientation_note, runs_frame
from app.tour import wait_for
from app.workers import local_workers


def new_study_form(ws: Workspace, names: list[str]) -> None:
    """The sidebar form that creates a study and selects it."""
    with st.sidebar.expander("New study", expanded=not names):
        new_name = st.text_input("Name", value="study-1", key="new_study_name",
                                 help="letters, digits, '-', '_' and '.'; at most 64 characters")
        samplers = sampler_names()
        sampler = st.selectbox("Sampler", samplers, index=samplers.index(DEFAULT_SAMPLER), key="new_study_sampler",
                               help="front: fills the Pareto front in the fewest trials; demix: the paper's "
                               "rounds (Dirichlet prior, then predictor-ranked mixtures)")
        if st.button("Create study", key="create_study", icon=":material/add:"):
            require_edit()
            try:
                new_study(ws, new_name, sampler=sampler)
            except DemixError as exc:
                st.error(str(exc))
                return
            remember_study(new_name)
            st.session_state["_created"] = new_name
            st.rerun()


def controls(ws: Workspace, study: str) -> None:
    """Start and stop local workers, export the report (editors only)."""
    workers = local_workers()
    c1, c2, c3, c4, c5 = st.columns([1, 1, 1, 1, 1], vertical_alignment="bottom")
    device = c1.selectbox("Device", ["auto", "cpu", "cuda"], key="worker_device")
    budget = c2.number_input("Trials per worker", 1, 100_000, 100, key="worker_budget",
                             help="the worker stops once this many more trials of the study are complete")
    if c3.button("Start worker", key="start_worker", icon=":material/play_arrow:"):
        require_edit()
        try:
            target = workers.start(ws, study, device, trials=int(budget))
            st.toast(f"Worker started on {md(study)}; it stops at {target} complete trials.")
        except DemixError as exc:
            st.error(str(exc))
    if c4.button("Stop workers", key="stop_workers", icon=":material/stop:"):
        require_edit()
        n = workers.stop(study)
        st.toast(f"Stopping {n} worker(s) after their current trial.")
    if c5.button("Export report", key="export_report", icon=":material/description:"):
        require_edit()
        export_report(ws, study)


def export_report(ws: Workspace, study: str) -> None:
    """Write the study's report under the workspace's ``reports/`` and offer it for download."""
    try:
        with st.spinner("Writing the report (fronts, trials, recommendation, recipe)..."):
            out = write_report(ws, study)
    except DemixError as exc:
        st.error(str(exc))
        return
    remember_report(study, out)
    st.success(f"Report written to {md(out)}")


def report_download(study: str) -> None:
    """The download button for this session's last report of ``study``."""
    report = last_report(study)
    if report is not None:
        st.download_button("Download the HTML report", report[0], file_name=report[1], mime="text/html",
                           key="dl_report", icon=":material/download:")


def charts(done, study: str, shown, *, unit: str = SCORE_UNIT) -> None:  # noqa: ANN001 - DataFrames
    """Fronts, mixture map, hypervolume, parallel coordinates (the report's figure set, scores in ``unit``), then the
    ``shown`` table of trials."""
    dcols, wcols = score_columns(done), weight_columns(done)
    pairs, color = [], None
    if len(dcols) >= 2:
        a, b = st.columns(2)
        x = a.selectbox("x axis", dcols, index=0, key="px", format_func=plain_name)
        y = b.selectbox("y axis", dcols, index=1, key="py", format_func=plain_name)
        pairs = [(x, y)]
    fronts = st.container()  # drawn once the figure set is built, above the columns as before
    c1, c2 = st.columns(2)
    if len(wcols) >= 3:
        color = c1.selectbox("Color the mixture map by", dcols, key="ternary_color", format_func=plain_name)
    bounds = feasible_set(str(ws.root), ws.storage_url(), study)
    figs = study_figure_set(done, pairs=pairs, color=color, bounds=bounds, unit=unit)
    if pairs:
        fronts.caption("Click a point to open its mixture in the Mixer.")
        event = fronts.plotly_chart(figs[front_key(pairs[0])], on_select="rerun", selection_mode="points",
                                    key="front2d")
        open_in_mixer(event, done, study)
    if "front3d" in figs:
        fronts.plotly_chart(figs["front3d"], key="front3d")
    if "ternary" in figs:
        c1.plotly_chart(figs["ternary"], key="ternary")
        if bounds is not None:
            c1.caption("Shaded: mixtures outside the token budget (each dataset's epochs and weight bounds).")
    c2.plotly_chart(figs["hypervolume"], key="hv")
    st.plotly_chart(figs["parcoords"], key="parcoords")
    st.dataframe(shown, hide_index=True, key="trials")


def table_study(ws: Workspace, study: str | None, editing: bool) -> None:
    """A study of a table workspace: its per-metric table, the Pareto front over its objectives, the imported runs."""
    if study is None:
        st.info("No study yet: import runs into one. " + IMPORT_HINT)
        return
    st.subheader(f"Study {md(study)}")
    st.caption(no_checkpoints("no worker runs here: the study's trials are the runs imported with "
                              "`demix import-runs`"))
    if editing:
        if st.button("Export report", key="export_report", icon=":material/description:"):
            require_edit()
            export_report(ws, study)
        report_download(study)
    root, storage = str(ws.root), ws.storage_url()
    done = complete_trials(root, storage, study)
    if done.empty:
        st.info(f"Study {md(study)} holds no imported run yet. " + IMPORT_HINT)
        return
    st.caption(f"{len(done)} imported runs")
    st.subheader("Metrics")
    st.dataframe(metric_frame(root, storage, study, done), hide_index=True, key="table_metrics")
    st.subheader("Pareto front over the objectives")
    st.caption(orientation_note())
    charts(done, study, runs_frame(root, storage, study, done), unit=UNIT)


st.title("Study")
ws = current_workspace()
if ws is None:
    st.stop()
editing = can_edit()
names = study_names(ws)
st.sidebar.caption(f"Workspace: {md(ws.name)}")
study = study_picker(names)
if ws.is_table:
    table_study(ws, study, editing)
    st.stop()
if editing:
    new_study_form(ws, names)
if study is None and wait_for(ws.root, "study", "the tour's study (it starts once validation picked a proxy)",
                              key="study_wait"):
    st.stop()
if study is None:
    st.info("No study yet. " + ("Create one in the sidebar, then start a worker: trials appear here as they land."
                                if editing else "An editor creates studies; this session only views."))
    st.stop()
if st.session_state.pop("_created", None) == study:
    st.success(f"Created study {md(study)}; it is selected. Start a worker to run its trials.")
st.subheader(f"Study {md(study)}")
if editing:
    controls(ws, study)
    report_download(study)


@st.fragment(run_every=2)
def live() -> None:
    """Redraws the workers and the trials from the storage every 2 seconds."""
    table = local_workers().table(study)
    if len(table):
        st.dataframe(table, hide_index=True, key="workers")
    root, storage = str(ws.root), ws.storage_url()
    done = complete_trials(root, storage, study)
    st.caption(f"Trials: {counts_line(trials(root, storage, study))}  ·  refreshed every 2 s")
    if done.empty:
        st.info(f"No finished trials yet. Start a worker above (or run demix worker with --study {md(study)}); the "
                "first points appear within seconds.")
        return
    charts(done, study, shown_trials(done))
    st.caption(score_note())


live()
