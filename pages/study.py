"""Study page: choose or create a study, run local workers, watch the fronts live."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.state import current_workspace, local_workers, read_only, study_names, trials
from demix_core import figures
from demix_core.errors import DemixError
from demix_core.pareto import hypervolume_history
from demix_core.search.study import SAMPLERS

st.title("Study")
ws = current_workspace()
if ws is None:
    st.stop()

names = study_names(ws)
chosen = st.query_params.get("study")
with st.sidebar:
    st.caption(f"Workspace: {ws.name}")
    if names:
        study = st.selectbox("Study", names, index=names.index(chosen) if chosen in names else 0, key="study_pick")
        st.query_params["study"] = study
    else:
        study = None
    if not read_only():
        with st.expander("New study", expanded=not names):
            new_name = st.text_input("Name", value="study-1", key="new_study_name")
            sampler = st.selectbox("Sampler", list(SAMPLERS), index=SAMPLERS.index("front"), key="new_study_sampler",
                                   help="front: fills the Pareto front in the fewest trials; demix: the paper's "
                                   "rounds (Dirichlet prior, then predictor-ranked mixtures)")
            if st.button("Create study", key="create_study"):
                from demix_core.search.study import create_study

                try:
                    create_study(ws, new_name, sampler=sampler, exist_ok=False)
                    st.query_params["study"] = new_name
                    st.rerun()
                except DemixError as exc:
                    st.error(str(exc))

if study is None:
    st.info("No study yet. Create one in the sidebar, then start a worker: trials appear here as they land.")
    st.stop()

workers = local_workers()
if not read_only():
    c1, c2, c4, c3 = st.columns([1, 1, 1, 1])
    device = c1.selectbox("Device", ["auto", "cpu", "cuda"], key="worker_device")
    if c2.button("Start worker", key="start_worker"):
        workers.start(ws, study, device)
    if c4.button("Stop workers", key="stop_workers"):
        workers.stop(study)
    if c3.button("Export report", key="export_report"):
        from demix_core.report import write_report
        from demix_core.search.study import load_study

        out = write_report(load_study(ws, study), ws.root / "reports" / f"{study}.html")
        st.session_state["report_path"] = out
if st.session_state.get("report_path"):
    report_file = st.session_state["report_path"]
    st.download_button("Download the HTML report", open(report_file, "rb").read(), file_name=f"{study}.html",
                       mime="text/html", key="dl_report")
table = workers.table(study)
if len(table):
    st.dataframe(table, hide_index=True)


@st.fragment(run_every=2)
def live() -> None:
    """Redraws from the storage every 2 seconds."""
    frame = trials(str(ws.root), ws.storage_url(), study)
    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    st.caption("Trials: " + (", ".join(f"{k.lower()} {v}" for k, v in counts.items()) or "none") + "  ·  refreshed "
               "every 2 s")
    if done.empty:
        st.info("No finished trials yet. Start a worker above (or `demix worker --workspace ... --study "
                f"{study}`); the first points appear within seconds.")
        return
    dcols = [c for c in done.columns if c.startswith("d:")]
    wcols = [c for c in done.columns if c.startswith("w:")]
    hover = wcols + dcols
    if len(dcols) >= 2:
        a, b = st.columns(2)
        x = a.selectbox("x axis", dcols, index=0, key="px")
        y = b.selectbox("y axis", dcols, index=1, key="py")
        fig = figures.pareto_2d(done, x, y, hover=hover)
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="front2d")
        points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else []
        if points and points[0].get("customdata") is not None:
            number = int(points[0]["customdata"])
            row = done[done["number"] == number].iloc[0]
            st.query_params["mixture"] = ",".join(f"{c[2:]}={row[c]:.4f}" for c in wcols)
            st.switch_page("pages/mixer.py")
    if len(dcols) >= 3:
        st.plotly_chart(figures.pareto_3d(done, *dcols[:3], hover=hover), key="front3d")
    values = done[dcols].to_numpy(dtype=float)
    c1, c2 = st.columns(2)
    if len(wcols) >= 3:
        color_by = c1.selectbox("Color the mixture map by", dcols, key="ternary_color")
        w = done[wcols].to_numpy(dtype=float)
        groups = [[0], [1], list(range(2, len(wcols)))]
        labels = [wcols[0][2:], wcols[1][2:], "+".join(c[2:] for c in wcols[2:])]
        c1.plotly_chart(figures.ternary(w, groups, labels, color=done[color_by].to_numpy(), color_label=color_by),
                        key="ternary")
    history = hypervolume_history(values, values.min(axis=0), points=60)
    c2.plotly_chart(figures.hypervolume_plot(history), key="hv")
    st.plotly_chart(figures.parallel_coordinates(done, wcols + dcols, dcols[0]), key="parcoords")
    st.dataframe(done.drop(columns=["datetime_complete"]).replace({np.nan: None}), hide_index=True, key="trials")


live()
