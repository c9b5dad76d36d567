"""The mixture download shared by the Recommend and Mixer pages: a training framework's data config."""

from __future__ import annotations

import streamlit as st

from demix_core.errors import DemixError
from demix_core.export.frameworks import FORMATS, UNITS, export_text
from demix_core.mixing.mixture import Mixture
from demix_core.workspace.manifest import Workspace


def mixture_download(ws: Workspace, mixture: Mixture, *, key: str) -> None:
    """Format, target tokens (default: the budget's) and, for OLMo-core, the global batch size; then a download
    of the export, or the budget's one-line reason why this mixture cannot be trained at that target."""
    c1, c2, c3 = st.columns(3)
    fmt = c1.selectbox("Format", FORMATS, key=f"{key}_fmt",
                       format_func=lambda f: f"{f} ({UNITS[f]})")
    target = c2.number_input("Target tokens", min_value=1, value=int(ws.budget.target_tokens or 1_000_000_000),
                             step=1_000_000, key=f"{key}_target")
    batch = c3.number_input("Global batch (tokens)", min_value=1, value=4_194_304, step=2048, key=f"{key}_batch",
                            disabled=fmt != "olmo-core", help="OLMo-core only: tokens per optimizer step")
    try:
        name, text = export_text(ws, mixture, fmt, target_tokens=int(target), global_batch_size=int(batch))
    except DemixError as exc:
        st.warning(str(exc))
        return
    st.download_button(f"Download for {fmt}", text, file_name=name, key=f"{key}_download",
                       icon=":material/download:")
