"""Workspace page: the open workspace's components and their compatibility."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.state import open_workspace, workspace_path
from demix_core.errors import DemixError


@st.cache_data(ttl=30, show_spinner=False)
def component_table(root: str) -> tuple[list[dict], list[str]]:
    """Component rows and the compatibility report lines (cached briefly)."""
    from demix_core.checkpoints import check_compatibility, open_checkpoint

    ws = open_workspace(Path(root))
    ckpts = [open_checkpoint(p) for p in ws.component_paths()]
    rows = []
    for entry, ck in zip(ws.components, ckpts):
        rows.append({
            "component": entry.name, "domain": entry.domain, "dataset": entry.dataset,
            "tokens": entry.tokens, "params": ck.num_params,
            "drift δ": None if entry.drift is None else round(entry.drift, 4), "path": str(ck.path),
        })
    return rows, check_compatibility(ckpts).lines()


st.title("Workspace")
path = st.text_input("Workspace folder", value=str(workspace_path()))
try:
    ws = open_workspace(Path(path))
except DemixError as exc:
    st.error(str(exc))
    st.info("Build the demo with `demix demo` (or `make run`), or open a folder with a demix.yaml.")
    st.stop()
st.session_state["workspace"] = str(ws.root)
st.caption(f"{ws.name} · {len(ws.components)} components · storage `{ws.storage}`")
rows, report = component_table(str(ws.root))
st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
ok = report[-1].startswith("compatible")
(st.success if ok else st.error)(report[-1])
with st.expander("Compatibility report"):
    st.code("\n".join(report))
