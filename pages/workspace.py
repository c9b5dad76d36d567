"""Workspace page: components, drift, the held-out loss heatmap, compatibility; build the demo; make a workspace
from your own checkpoints, add components and references (the compatibility report is shown before saving)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.auth import can_edit, require_edit
from app.state import DEFAULT_WORKSPACE, allowed_root, md, open_workspace, workspace_path
from demix_core.errors import DemixError, WorkspaceError
from demix_core.view import figures
from demix_core.workspace.manifest import Workspace


@st.cache_data(ttl=60, show_spinner=False)
def component_table(root: str) -> tuple[list[dict], list[str]]:
    """Component rows and the compatibility report (cached for a minute)."""
    from demix_core.io.checkpoints import check_compatibility, open_checkpoint

    ws = open_workspace(Path(root))
    ckpts = [open_checkpoint(p) for p in ws.component_paths()]
    rows = [{"component": e.name, "domain": e.domain, "dataset": e.dataset, "tokens": e.tokens,
             "params": ck.num_params, "drift δ": None if e.drift is None else round(e.drift, 4)}
            for e, ck in zip(ws.components, ckpts)]
    return rows, check_compatibility(ckpts).lines()


@st.cache_data(show_spinner="Scoring held-out loss of the base and every component...")
def heatmap_data(root: str) -> pd.DataFrame:
    """The held-out loss matrix (rows: base and components; columns: datasets)."""
    from demix_core.train.demo import loss_matrix

    return loss_matrix(open_workspace(Path(root)), max_tokens=4096)


def _lines(text: str) -> list[str]:
    """One entry per line or comma (paths, names)."""
    return [p.strip() for line in text.splitlines() for p in line.split(",") if p.strip()]


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
        st.caption(f"Quick suite: the first {ws_new.heldout_slice():,} tokens of each of {len(ws_new.datasets)} "
                   "held-out file(s), a deterministic slice.")
    if st.button(f"Save {ws_new.root / 'demix.yaml'}", key=f"{key}_save", icon=":material/save:", type="primary"):
        require_edit()
        try:
            saved = prepared.save(force=force)
        except DemixError as exc:
            st.error(str(exc))
            return
        del st.session_state[key]
        st.session_state["workspace"] = str(ws_new.root)
        st.query_params["ws"] = str(ws_new.root)
        st.session_state.pop("ws_path", None)  # the folder field shows the saved workspace on the rerun
        st.toast(f"Saved {saved}")
        component_table.clear()
        st.rerun()


def new_workspace_form(default: Path) -> None:
    """Make a workspace from component checkpoints: check (report shown), then save."""
    from demix_core.workspace.init import prepare_init
    from demix_core.workspace.manifest import DEFAULT_HELDOUT_TOKENS

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
            target = Path(folder).expanduser().resolve()
            if target != allowed_root() and allowed_root() not in target.parents:
                raise WorkspaceError(f"{folder} is outside the allowed root {allowed_root()}; choose a folder "
                                     "inside it")
            st.session_state["_init_prepared"] = prepare_init(
                target, _lines(comps), names=_lines(names), domains=_lines(domains), base=base.strip() or None,
                heldout=_lines(held), text_field=field.strip() or "text", heldout_tokens=int(tokens), force=force)
        except DemixError as exc:
            st.error(str(exc))
    show_prepared("_init_prepared", force=force)


def add_forms(ws: Workspace) -> None:
    """Add a component or a reference model to the open workspace: check (report shown), then save."""
    from demix_core.workspace.init import prepare_component, prepare_reference

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
        mixture = st.text_input("Mixture, e.g. " + ",".join(f"{n}={1 / len(ws.components):.2f}"
                                                            for n in ws.component_names), key="add_r_mixture")
        checked_r = st.form_submit_button("Check reference", icon=":material/fact_check:")
    for checked, key, make in (
        (checked_c, "_add_component", lambda: prepare_component(ws.root, name.strip(), path_c.strip(),
                                                                domain=domain.strip() or None,
                                                                heldout=held.strip() or None,
                                                                text_field=field.strip() or "text")),
        (checked_r, "_add_reference", lambda: prepare_reference(ws.root, rname.strip(), path_r.strip(), mixture)),
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


st.title("Workspace")
path = st.text_input("Workspace folder", value=str(workspace_path()), key="ws_path")
try:
    ws = open_workspace(Path(path))
except DemixError as exc:
    st.error(str(exc))
    if can_edit() and isinstance(exc, WorkspaceError) and "outside the allowed root" not in str(exc):
        with st.expander("Make a workspace from your own checkpoints", expanded=True,
                         icon=":material/create_new_folder:"):
            new_workspace_form(Path(path))
    if Path(path).resolve() == DEFAULT_WORKSPACE.resolve() and can_edit():
        st.info("The demo workspace is not built yet. Building it takes a few minutes on CPU.")
        if st.button("Build the demo workspace", key="build_demo", icon=":material/build:"):
            require_edit()
            from demix_core.train.demo import build_demo

            with st.status("Building the demo workspace...", expanded=True) as status:
                build_demo(DEFAULT_WORKSPACE, log=st.write, progress=False)
                status.update(label="Demo workspace ready", state="complete")
            st.rerun()
    else:
        st.info("Open a folder with a demix.yaml inside the allowed root, or build the demo with `demix demo`.")
    st.stop()

st.session_state["workspace"] = str(ws.root)
if Path(path).resolve() != DEFAULT_WORKSPACE.resolve():
    st.query_params["ws"] = str(ws.root)
st.caption(f"{md(ws.name)} · {len(ws.components)} components · {len(ws.references)} reference models · storage "
           f"{md(ws.storage)}")
rows, report = component_table(str(ws.root))
st.dataframe(pd.DataFrame(rows), hide_index=True, key="components")
ok = report[-1].startswith("compatible")
(st.success if ok else st.error)(report[-1])
with st.expander("Compatibility report"):
    st.code("\n".join(report))
if ws.datasets and st.toggle("Held-out loss heatmap", value=False, key="show_heatmap"):
    st.plotly_chart(figures.heatmap(heatmap_data(str(ws.root)), title="held-out loss (nats/token), lower is better",
                                    color_label="loss (nats/token)"), key="heatmap")
if ws.datasets:
    st.caption(f"Quick suite: the first {ws.heldout_slice():,} tokens of each of {len(ws.datasets)} held-out file(s), "
               "a deterministic slice.")
if can_edit():
    with st.expander("Add to this workspace", icon=":material/add:"):
        add_forms(ws)
    with st.expander("Make another workspace from your own checkpoints", icon=":material/create_new_folder:"):
        new_workspace_form(ws.root.parent / "my-workspace")
