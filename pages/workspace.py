"""Workspace page: components, drift, the held-out loss heatmap, compatibility; build the demo; make a workspace
from your own checkpoints, add components and references (the compatibility report is shown before saving)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.auth import can_edit, require_edit
from app.errors import DemixError
from app.guide import next_step
from app.state import Workspace, open_workspace, remember_workspace, workspace_path
from app.tables import IMPORT_HINT, references_frame, studies_frame, workspace_note
from app.tables import summary as table_summary
from app.tour import has_tour, tour_panel, wait_for
from app.workspaces import (
    COMPONENT_COLUMNS,
    DEFAULT_HELDOUT_TOKENS,
    check_component,
    check_new_workspace,
    check_reference,
    component_table,
    example_mixture,
    heatmap_figure,
    is_compatible,
    is_demo,
    offers_new_workspace,
    quick_suite_note,
    references_table,
    summary,
)


def show_prepared(key: str, *, force: bool = False) -> None:
    """The checked change kept in the session: its compatibility report, and a save button when it is merge-able."""
    prepared = st.session_state.get(key)
    if prepared is None:
        return
    ok = prepared.report.ok
    (st.success if ok else st.error)(prepared.report.summary())
    st.code("\n".join(prepared.report.lines()), language=None)
    if not ok:
        st.caption("Nothing is written: the checkpoints cannot be merged.")
        return
    ws_new = prepared.workspace
    if ws_new.datasets:
        st.caption(quick_suite_note(ws_new))
    if st.button(f"Save {ws_new.root / 'demix.yaml'}", key=f"{key}_save", icon=":material/save:", type="primary"):
        require_edit()
        try:
            saved = prepared.save(force=force)
        except DemixError as exc:
            st.error(str(exc))
            return
        del st.session_state[key]
        remember_workspace(ws_new.root)
        st.session_state.pop("ws_path", None)  # the folder field shows the saved workspace on the rerun
        st.toast(f"Saved {saved}")
        component_table.clear()
        st.rerun()


def new_workspace_form(default: Path) -> None:
    """Make a workspace from component checkpoints: check (report shown), then save."""
    with st.form("init_form"):
        folder = st.text_input("New workspace folder", value=str(default), key="init_dir")
        comps = st.text_area("Component checkpoint folders (one per line)", key="init_components")
        c1, c2 = st.columns(2)
        names = c1.text_input("Names (comma-separated; default: folder names)", key="init_names")
        domains = c2.text_input("Domains (comma-separated; default: the names)", key="init_domains")
        held = st.text_area("Held-out text files, one per component (.txt, .jsonl, .jsonl.gz, .parquet)",
                            key="init_heldout")
        c3, c4, c5 = st.columns(3)
        field = c3.text_input("Text field / column", value="text", key="init_field")
        tokens = c4.number_input("Held-out tokens per file", min_value=128, value=DEFAULT_HELDOUT_TOKENS, step=1024,
                                 key="init_tokens")
        base = c5.text_input("Base checkpoint (optional)", key="init_base")
        force = st.checkbox("Replace an existing demix.yaml", key="init_force")
        checked = st.form_submit_button("Check compatibility", icon=":material/fact_check:")
    if checked:
        require_edit()
        st.session_state.pop("_init_prepared", None)
        try:
            st.session_state["_init_prepared"] = check_new_workspace(
                folder, comps, names=names, domains=domains, heldout=held, text_field=field, tokens=int(tokens),
                base=base, force=force)
        except DemixError as exc:
            st.error(str(exc))
    show_prepared("_init_prepared", force=force)


def add_forms(ws: Workspace) -> None:
    """Add a component or a reference model to the open workspace: check (report shown), then save."""
    left, right = st.columns(2)
    with left.form("add_component_form"):
        st.markdown("**Add a component**")
        name = st.text_input("Name", key="add_c_name")
        path_c = st.text_input("Checkpoint folder", key="add_c_path")
        domain = st.text_input("Domain (default: the name)", key="add_c_domain")
        held = st.text_input("Held-out file (optional)", key="add_c_heldout")
        field = st.text_input("Text field / column", value="text", key="add_c_field")
        checked_c = st.form_submit_button("Check component", icon=":material/fact_check:")
    with right.form("add_reference_form"):
        st.markdown("**Add a reference model** (really trained on a mixture)")
        rname = st.text_input("Name", key="add_r_name")
        path_r = st.text_input("Checkpoint folder", key="add_r_path")
        mixture = st.text_input("Mixture, e.g. " + example_mixture(ws), key="add_r_mixture")
        checked_r = st.form_submit_button("Check reference", icon=":material/fact_check:")
    for checked, key, make in (
        (checked_c, "_add_component", lambda: check_component(ws, name, path_c, domain=domain, heldout=held,
                                                              text_field=field)),
        (checked_r, "_add_reference", lambda: check_reference(ws, rname, path_r, mixture)),
    ):
        if checked:
            require_edit()
            st.session_state.pop(key, None)
            try:
                st.session_state[key] = make()
            except DemixError as exc:
                st.error(str(exc))
    show_prepared("_add_component")
    show_prepared("_add_reference")


def table_workspace(ws: Workspace) -> None:
    """A table workspace (past runs, no checkpoints): its domains, studies and references."""
    st.caption(table_summary(ws))
    st.info(workspace_note(), icon=":material/table:")
    st.subheader("Domains")
    st.dataframe(pd.DataFrame({"domain": list(ws.component_names)}), hide_index=True, key="table_domains")
    st.subheader("Studies of imported runs")
    st.dataframe(studies_frame(ws), hide_index=True, key="table_studies")
    st.subheader("References (runs at a larger scale)")
    if ws.references:
        st.dataframe(references_frame(ws), hide_index=True, key="table_references")
    else:
        st.caption("None yet: the Validate page ranks them with each study's predictor once there are three.")
    st.caption(IMPORT_HINT)
    if can_edit():
        with st.expander("Make another workspace from your own checkpoints", icon=":material/create_new_folder:"):
            new_workspace_form(ws.root.parent / "my-workspace")


st.title("Workspace")
path = st.text_input("Workspace folder", value=str(workspace_path()), key="ws_path")
try:
    ws = open_workspace(Path(path))
except DemixError as exc:
    building = is_demo(path) or has_tour(path)
    if not building:
        st.error(str(exc))
    if building:  # the tour first: the demo is what this folder is for
        if not wait_for(path, "components", "the demo's components (about 7 minutes on 2 CPU cores)", key="ws_wait",
                        progress=False):
            st.info("The demo workspace is not built yet: the tour builds it in the background and takes it to a "
                    "verdict (`make run` starts it; so does the button below).")
        tour_panel(path, key="ws_tour", expanded=True)
    else:
        st.info("Open a folder with a demix.yaml inside the allowed root, or build the demo with `demix demo`.")
    if can_edit() and offers_new_workspace(exc):
        with st.expander("Make a workspace from your own checkpoints", expanded=not building,
                         icon=":material/create_new_folder:"):
            new_workspace_form(Path(path))
    st.stop()

remember_workspace(ws.root, in_url=not is_demo(path))
if ws.is_table:
    table_workspace(ws)
    st.stop()
st.caption(summary(ws))
tour_panel(ws.root, key="ws_tour")
st.info(next_step(ws), icon=":material/arrow_forward:")
rows, report = component_table(str(ws.root))
st.dataframe(pd.DataFrame(rows), hide_index=True, key="components", column_config=COMPONENT_COLUMNS)
(st.success if is_compatible(report) else st.error)(report[-1])
with st.expander("Compatibility report"):
    st.code("\n".join(report))
if ws.datasets and st.toggle("Held-out loss heatmap", value=False, key="show_heatmap"):
    st.plotly_chart(heatmap_figure(str(ws.root)), key="heatmap")
if ws.datasets:
    st.caption(quick_suite_note(ws))
st.subheader("References")
if ws.references:
    st.dataframe(references_table(ws), hide_index=True, key="references")
    st.caption("One row per mixture: its references trained at other seeds (repeats, `demix workspace "
               "train-references --train-seed S`) share its row, and the Validate page measures the noise floor from "
               "them.")
else:
    st.caption("None yet: the Validate page trains them (`demix workspace train-references`); models trained "
               "elsewhere are added with `demix workspace add-reference`.")
if can_edit():
    with st.expander("Add to this workspace", icon=":material/add:"):
        add_forms(ws)
    with st.expander("Make another workspace from your own checkpoints", icon=":material/create_new_folder:"):
        new_workspace_form(ws.root.parent / "my-workspace")
