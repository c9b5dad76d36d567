"""Validate page: merged proxies against reference models, beside the two baselines."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.benchmarks import paper_benchmarks_ready
from app.state import current_workspace
from demix_core import figures

st.title("Validate")
ws = current_workspace()
if ws is None:
    st.stop()
refs = [r for r in ws.references if r.kind == "reference"]
if len(refs) < 3:
    st.info(f"This workspace has {len(refs)} reference models; validation needs at least 3. Train them with "
            "`demix demo --references 16`.")
    st.stop()
suite = st.selectbox("Suite", ["quick", "paper"], key="val_suite")
if suite == "paper" and not paper_benchmarks_ready("val_prepare"):
    st.stop()


@st.cache_data(show_spinner="Scoring references, merged proxies and trained proxies...")
def run(root: str, suite: str) -> dict:
    from demix_core.validate import validate_workspace
    from demix_core.workspace import load_workspace

    report = validate_workspace(load_workspace(root), suite=suite, log=lambda s: None)
    return {"json": report.to_json(), "lines": report.lines()}


if st.button("Run validation", key="run_val") or st.session_state.get("val_done") == suite:
    st.session_state["val_done"] = suite
    out = run(str(ws.root), suite)
    data = out["json"]
    st.markdown(f"**{data['verdict']}**")
    st.code("\n".join(out["lines"][:-1]))
    merged = data["methods"][0]
    proxy_scores = data["method_scores"]["merged proxies (DeMix)"]
    cols = st.columns(len(data["domains"]))
    for col, d in zip(cols, data["domains"]):
        rho = merged["rho"][d]["value"]
        col.plotly_chart(figures.scatter_with_identity(
            proxy_scores[d], data["reference_scores"][d], labels=data["references"],
            x_title=f"merged proxy {d} score ({figures.SCORE_UNIT})",
            y_title=f"reference {d} score ({figures.SCORE_UNIT})", title=f"{d}: rho {rho:.2f}"), key=f"val_{d}")
    frame = pd.DataFrame({"reference": data["references"], **{f"ref {d}": data["reference_scores"][d]
                                                              for d in data["domains"]}})
    st.dataframe(frame, hide_index=True, key="val_table")
    st.caption(f"macro rho of merged proxies: {merged['macro']['value']:.2f}")
