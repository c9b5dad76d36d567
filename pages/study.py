"""Study page: choose or create a study, run local workers with a trial budget, watch the fronts live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from app.auth import can_edit, require_edit
from app.nav import page
from app.state import (
    current_workspace,
    engine,
    feasible_set,
    local_workers,
    md,
    remember_study,
    sampler_names,
    study_names,
    study_picker,
    trials,
)
from demix_core.errors import DemixError
from demix_core.io.names import check_study_name, safe_filename
from demix_core.view import figures
from demix_core.workspace.manifest import Workspace

REPORT_KEY = "_report_paths"  # study -> the report this session exported


def new_study_form(ws: Workspace, names: list[str]) -> None:
    """The sidebar form that creates a study and selects it."""
    with st.sidebar.expander("New study", expanded=not names):
        new_name = st.text_input("Name", value="study-1", key="new_study_name",
                                 help="letters, digits, '-', '_' and '.'; at most 64 characters")
        samplers = sampler_names()
        sampler = st.selectbox("Sampler", samplers, index=samplers.index("front"), key="new_study_sampler",
                               help="front: fills the Pareto front in the fewest trials; demix: the paper's "
                               "rounds (Dirichlet prior, then predictor-ranked mixtures)")
        if st.button("Create study", key="create_study", icon=":material/add:"):
            require_edit()
            from demix_core.search.study import create_study

            try:
                create_study(ws, check_study_name(new_name), sampler=sampler, exist_ok=False)
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
    from demix_core.search.study import load_study
    from demix_core.view.report import write_study_report

    try:
        with st.spinner("Writing the report (fronts, trials, recommendation, recipe)..."):
            out = write_study_report(ws, load_study(ws, study), resident=engine(str(ws.root), "quick").resident)
    except DemixError as exc:
        st.error(str(exc))
        return
    st.session_state.setdefault(REPORT_KEY, {})[study] = str(out)
    st.success(f"Report written to {md(out)}")


def report_download(study: str) -> None:
    """The download button for this session's last report of ``study``."""
    path = st.session_state.get(REPORT_KEY, {}).get(study)
    if path and Path(path).is_file():
        st.download_button("Download the HTML report", Path(path).read_bytes(), file_name=safe_filename(study, ".html"),
                           mime="text/html", key="dl_report", icon=":material/download:")


def open_in_mixer(event: object, done, wcols: list[str], study: str) -> None:  # noqa: ANN001 - a DataFrame
    """A clicked point opens its mixture in the Mixer (once per click)."""
    points = event.get("selection", {}).get("points", []) if isinstance(event, dict) else []
    picked = points[0].get("customdata") if points else None
    if isinstance(picked, list):
        picked = picked[0] if picked else None
    if picked is None:
        st.session_state.pop("_picked_point", None)
        return
    number = int(picked)
    if st.session_state.get("_picked_point") == (study, number):
        return  # this selection was handled already (the user came back from the Mixer)
    st.session_state["_picked_point"] = (study, number)
    rows = done[done["number"] == number]
    if rows.empty:
        return
    row = rows.iloc[0]
    mixture = ",".join(f"{c[2:]}={row[c]:.4f}" for c in wcols)
    st.switch_page(page("mixer"), query_params={"study": study, "mixture": mixture, "trial": str(number)})


def charts(done, study: str) -> None:  # noqa: ANN001 - a DataFrame of complete trials
    """Fronts, mixture map, hypervolume, parallel coordinates and the trial table (the report's figure set)."""
    dcols = [c for c in done.columns if c.startswith("d:")]
    wcols = [c for c in done.columns if c.startswith("w:")]
    pairs, color = [], None
    if len(dcols) >= 2:
        a, b = st.columns(2)
        x = a.selectbox("x axis", dcols, index=0, key="px", format_func=figures.plain_name)
        y = b.selectbox("y axis", dcols, index=1, key="py", format_func=figures.plain_name)
        pairs = [(x, y)]
    fronts = st.container()  # drawn once the figure set is built, above the columns as before
    c1, c2 = st.columns(2)
    if len(wcols) >= 3:
        color = c1.selectbox("Color the mixture map by", dcols, key="ternary_color", format_func=figures.plain_name)
    bounds = feasible_set(str(ws.root), ws.storage_url(), study)
    figs = {f.key: f.figure for f in figures.study_figures(done, pairs=pairs, color=color, bounds=bounds)}
    if pairs:
        fronts.caption("Click a point to open its mixture in the Mixer.")
        event = fronts.plotly_chart(figs[f"front:{x}|{y}"], on_select="rerun", selection_mode="points", key="front2d")
        open_in_mixer(event, done, wcols, study)
    if "front3d" in figs:
        fronts.plotly_chart(figs["front3d"], key="front3d")
    if "ternary" in figs:
        c1.plotly_chart(figs["ternary"], key="ternary")
        if bounds is not None:
            c1.caption("Shaded: mixtures outside the token budget (each dataset's epochs and weight bounds).")
    c2.plotly_chart(figs["hypervolume"], key="hv")
    st.plotly_chart(figs["parcoords"], key="parcoords")
    table = done.drop(columns=["datetime_complete"]).rename(columns=figures.plain_name)
    st.dataframe(table.replace({np.nan: None}), hide_index=True, key="trials")


st.title("Study")
ws = current_workspace()
if ws is None:
    st.stop()
editing = can_edit()
names = study_names(ws)
st.sidebar.caption(f"Workspace: {md(ws.name)}")
study = study_picker(names)
if editing:
    new_study_form(ws, names)
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
    frame = trials(str(ws.root), ws.storage_url(), study)
    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    st.caption("Trials: " + (", ".join(f"{k.lower()} {v}" for k, v in counts.items()) or "none") + "  ·  refreshed "
               "every 2 s")
    if done.empty:
        st.info(f"No finished trials yet. Start a worker above (or run demix worker with --study {md(study)}); the "
                "first points appear within seconds.")
        return
    charts(done, study)


live()
