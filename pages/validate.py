"""Validate page: both proxy kinds against reference models, beside the baselines; the proxy to trust; the trained
recommendation and baselines among the references; why, in words.

Validation runs as a background job (``demix validate``, progress from its log); its report and pick are read
from ``<workspace>/validation/<suite>.json``, so a reload, another session or a viewer sees the last result.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.auth import can_edit
from app.benchmarks import paper_benchmarks_ready
from app.jobs import job_panel, start
from app.state import current_workspace
from demix_core.validation.explain import explanation, summary_frame
from demix_core.validation.loop import loop_frame
from demix_core.validation.methods import PROXY_NAMES
from demix_core.view import figures
from demix_core.workspace.records import read_validation, record_path

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
kind = f"validate-{suite}"
if can_edit():
    if suite == "paper" and not paper_benchmarks_ready("val_prepare"):
        st.stop()
    if st.button("Run validation", key="run_val", icon=":material/play_arrow:",
                 help="Scores every reference, both proxy kinds and the baselines in the background"):
        start(ws, kind, ["validate", "--workspace", str(ws.root), "--suite", suite],
              title=f"validation on the {suite} suite")
job_panel(str(ws.root), kind, key="val_job")


@st.fragment(run_every=5)
def result() -> None:
    data = read_validation(ws, suite)
    if data is None:
        st.info(f"No validation on the {suite} suite yet" + (": run it above." if can_edit() else "."))
        return
    pick = data.get("pick")
    st.caption(f"Last run {data.get('written', '?')}, {len(data['references'])} references "
               f"(`{record_path(ws, suite).relative_to(ws.root)}`).")
    if pick:
        st.success(f"Proxy to trust on this workspace: **{pick['proxy']}** ({PROXY_NAMES[pick['proxy']]}). New "
                   "studies default to it unless a flag or the manifest's defaults.proxy says otherwise.",
                   icon=":material/verified:")
    st.markdown(f"**{data['verdict']}**")
    st.dataframe(summary_frame(data), key="val_summary")
    proxies = data.get("proxies") or {"merge": data["methods"][0]["name"]}
    tabs = st.tabs([f"{k}: {name}" for k, name in proxies.items()])
    for tab, (k, name) in zip(tabs, proxies.items()):
        method = next(m for m in data["methods"] if m["name"] == name)
        scores = data["method_scores"][name]
        with tab:
            cols = st.columns(len(data["domains"]))
            for col, d in zip(cols, data["domains"]):
                rho = method["rho"][d]["value"]
                col.plotly_chart(figures.scatter_with_identity(
                    scores[d], data["reference_scores"][d], labels=data["references"],
                    x_title=f"{k} proxy {d} score ({figures.SCORE_UNIT})",
                    y_title=f"reference {d} score ({figures.SCORE_UNIT})", title=f"{d}: rho {rho:.2f}"),
                    key=f"val_{k}_{d}")
    loop = data.get("loop")
    st.subheader("Does the recommendation win when trained?")
    if loop and loop.get("entries"):
        st.plotly_chart(figures.loop_figure(loop), key="val_loop")
        st.dataframe(loop_frame(loop), hide_index=True, key="val_loop_table")
        st.markdown(f"**{loop['verdict']}**")
    elif loop:
        st.info(loop["verdict"])
    else:
        st.info("No trained recommendation yet: on the Recommend page, Train as reference (or `demix recommend "
                "--train`), then run validation again.")
    words = explanation(data)
    if words:
        st.markdown("\n".join(words[1:]), help="Read from this validation's numbers")
    frame = pd.DataFrame({"reference": data["references"], **{f"ref {d}": data["reference_scores"][d]
                                                              for d in data["domains"]}})
    st.dataframe(frame, hide_index=True, key="val_table")


result()
