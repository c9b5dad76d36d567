"""Workspace page: components, drift, the held-out loss heatmap, compatibility; build the demo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.auth import can_edit, require_edit
from app.state import DEFAULT_WORKSPACE, md, open_workspace, workspace_path
from demix_core import figures
from demix_core.errors import DemixError


@st.cache_data(ttl=60, show_spinner=False)
def component_table(root: str) -> tuple[list[dict], list[str]]:
    """Component rows and the compatibility report (cached for a minute)."""
    from demix_core.checkpoints import check_compatibility, open_checkpoint

    ws = open_workspace(Path(root))
    ckpts = [open_checkpoint(p) for p in ws.component_paths()]
    rows = [{"component": e.name, "domain": e.domain, "dataset": e.dataset, "tokens": e.tokens,
             "params": ck.num_params, "drift δ": None if e.drift is None else round(e.drift, 4)}
            for e, ck in zip(ws.components, ckpts)]
    return rows, check_compatibility(ckpts).lines()


@st.cache_data(show_spinner="Scoring held-out loss of the base and every component...")
def heatmap_data(root: str) -> pd.DataFrame:
    """The held-out loss matrix (rows: base and components; columns: datasets)."""
    from demix_core.demo import loss_matrix

    return loss_matrix(open_workspace(Path(root)), max_tokens=4096)


st.title("Workspace")
path = st.text_input("Workspace folder", value=str(workspace_path()), key="ws_path")
try:
    ws = open_workspace(Path(path))
except DemixError as exc:
    st.error(str(exc))
    if Path(path).resolve() == DEFAULT_WORKSPACE.resolve() and can_edit():
        st.info("The demo workspace is not built yet. Building it takes a few minutes on CPU.")
        if st.button("Build the demo workspace", key="build_demo", icon=":material/build:"):
            require_edit()
            from demix_core.demo import build_demo

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
