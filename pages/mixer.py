"""Mixer page: a slider per component kept on the simplex, the merged proxy's scores live."""

from __future__ import annotations

import html
import json

import pandas as pd
import streamlit as st

from app.auth import can_edit, require_edit
from app.state import current_workspace, engine, md, merge_methods, study_names, study_picker, trials
from demix_core import figures
from demix_core.errors import DemixError
from demix_core.export import mergekit_yaml, recipe
from demix_core.mixture import rebalance, weights_text
from demix_core.names import is_valid_study_name

MIXTURE_KEY = "_mixture"  # the mixer's mixture, kept across pages (the URL's ?mixture= wins)

st.title("Mixer")
ws = current_workspace()
if ws is None:
    st.stop()
names = list(ws.component_names)
editing = can_edit()
studies = study_names(ws)
study = study_picker(studies, label="Study (for Add to study)")
wanted = st.query_params.get("mixture") or st.session_state.get(MIXTURE_KEY)
if wanted and "mixture" not in st.query_params:
    st.query_params["mixture"] = wanted


def _init() -> None:
    """Sliders start from ?mixture=... (a shared link or a clicked point), else equal weights."""
    text = wanted
    try:
        mix = ws.parse_mixture(text).as_dict() if text else {n: 1 / len(names) for n in names}
    except DemixError as exc:
        st.warning(f"Ignoring the mixture in the link: {exc}")
        mix = {n: 1 / len(names) for n in names}
    for n in names:
        st.session_state[f"w_{n}"] = round(mix[n], 4)
    st.session_state["mixer_from"] = text
    if text:
        st.session_state[MIXTURE_KEY] = text


if "w_" + names[0] not in st.session_state or st.session_state.get("mixer_from") != wanted:
    _init()


def on_slide(moved: str) -> None:
    """Keep the weights on the simplex (:func:`rebalance`) and the link in step with the sliders."""
    current = {n: float(st.session_state[f"w_{n}"]) for n in names}
    locked = [n for n in names if st.session_state.get(f"lock_{n}")]
    for n, w in rebalance(current, moved, locked).items():
        st.session_state[f"w_{n}"] = w
    mixture = weights_text({n: st.session_state[f"w_{n}"] for n in names})
    st.query_params["mixture"] = mixture
    st.session_state["mixer_from"] = st.session_state[MIXTURE_KEY] = mixture


left, right = st.columns([1, 2])
with left:
    methods = merge_methods()
    method = st.selectbox("Merge method", methods, index=methods.index("linear"), key="method")
    for n in names:
        c1, c2 = st.columns([3, 1])
        c1.slider(n, 0.0, 1.0, step=0.01, key=f"w_{n}", on_change=on_slide, args=(n,))
        c2.checkbox("lock", key=f"lock_{n}", help=f"keep {n}'s weight while moving others")
weights = {n: float(st.session_state[f"w_{n}"]) for n in names}
total = sum(weights.values())
if total <= 0:
    st.error("All weights are 0; move a slider up.")
    st.stop()
mixture = ws.parse_mixture(",".join(f"{n}={w}" for n, w in weights.items()))

eng = engine(str(ws.root), "quick")
try:
    ev = eng.evaluate(mixture, method=method)
except DemixError as exc:
    st.error(str(exc))
    st.stop()
with right:
    st.subheader("Merged proxy, quick suite")
    st.caption(f"{mixture.label(2)} · {method} · merged in {ev.merge_seconds * 1e3:.0f} ms, scored in "
               f"{ev.scores.seconds * 1e3:.0f} ms")
    trial = st.query_params.get("trial")
    if trial and study and trial.isdigit():
        table = trials(str(ws.root), ws.storage_url(), study)
        row = table[table["number"] == int(trial)] if len(table) else table
        recorded = "  ".join(f"{c[2:]} {row.iloc[0][c]:.4f}" for c in row.columns if c.startswith("d:")) \
            if len(row) else "not found"
        st.info(f"Opened from trial #{trial} of study {md(study)} (recorded scores: {md(recorded)}); the scores "
                "below are this mixture's, merged and scored now.")
    for col, (domain, value) in zip(st.columns(len(ev.scores.domains)), ev.scores.domains.items()):
        col.metric(f"{domain} score", f"{value:.4f}", help="higher is better (negated bits per byte)")
    scores = pd.DataFrame({"domain": list(ev.scores.domains), "score (higher is better)": list(
        ev.scores.domains.values())})
    st.dataframe(scores, hide_index=True, key="domain_scores")
    bench = pd.DataFrame({"benchmark": list(ev.scores.benchmarks), "value": list(ev.scores.benchmarks.values())})
    st.dataframe(bench, hide_index=True, key="bench_scores")
    if study:
        frame = trials(str(ws.root), ws.storage_url(), study)
        done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
        dcols = [f"d:{d}" for d in ev.scores.domains]
        if len(done) and all(c in done for c in dcols) and len(dcols) >= 2:
            title = f"this mixture on the front of {html.escape(study)}"
            fig = figures.pareto_2d(done, dcols[0], dcols[1], title=title)
            fig.add_scatter(x=[ev.scores.domains[dcols[0][2:]]], y=[ev.scores.domains[dcols[1][2:]]], mode="markers",
                            marker={"size": 16, "symbol": "star", "color": "#1f77b4"}, name="this mixture")
            st.plotly_chart(fig, key="mixer_front")

c1, c2, c3, c4 = st.columns(4)

if editing:
    if study and c1.button("Add to study", key="enqueue", icon=":material/playlist_add:"):
        require_edit()
        from demix_core.search.study import enqueue, load_study

        if not is_valid_study_name(study):
            st.error(f"Study {md(study)} has a name this dashboard does not write to; pick another study.")
        else:
            enqueue(load_study(ws, study), mixture, source="manual")
            st.success(f"Queued {mixture.label(2)} in study {md(study)}; a worker evaluates it next.")
c2.download_button("Recipe (JSON)", json.dumps(recipe(eng.resident, mixture, method=method, hashes=False), indent=2),
                   file_name="demix_recipe.json", key="dl_recipe")
c3.download_button("mergekit YAML", mergekit_yaml(eng.resident, mixture, method=method),
                   file_name="mergekit.yaml", key="dl_yaml")
if editing:
    if c4.button("Export merged model", key="export", icon=":material/save:"):
        require_edit()
        from demix_core.export import export_merged

        out = ws.root / "exports" / ("mix-" + "-".join(f"{n}{int(round(w * 100))}" for n, w in weights.items()))
        try:
            export_merged(eng.resident, mixture, out, method=method, force=True)
            st.success(f"Exported to {md(out)}")
        except DemixError as exc:
            st.error(str(exc))
