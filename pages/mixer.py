"""Mixer page: tune a mixture by eye. Predicted scores at once, the merged proxy's measured scores right after.

The mixture lives in one :class:`~demix_core.mixing.sliders.SliderState` (exact to 1e-4, always on the simplex and
inside the token budget's bounds: the selected study's, else the workspace's); sliders and number inputs are
views of it, and each bounded slider has its range written under it. While a slider moves, the selected
study's surrogate predicts the scores; the measurement runs on the engine's background thread
(:class:`~demix_core.background.latest.LatestFirst`) and the page waits for it at a point where Streamlit can interrupt it,
so a newer slider value starts a new run at once and the newest position is measured next.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pandas as pd
import streamlit as st

from app.auth import can_edit, require_edit
from app.jobs import train_as_reference
from app.mixture_download import mixture_download
from app.state import (
    current_workspace,
    engine,
    finished_trials,
    local_workers,
    md,
    merge_methods,
    mixer_runner,
    remembered_trials,
    study_attrs,
    study_names,
    study_picker,
    study_settings,
    surrogate,
    trials,
)
from demix_core.background.latest import measure, wait
from demix_core.errors import DemixError
from demix_core.export.merged import mergekit_yaml, recipe
from demix_core.io.names import is_valid_study_name
from demix_core.mixing.bounds import Bounds
from demix_core.mixing.sliders import DIGITS, SliderState
from demix_core.search.nearest import nearest_trials
from demix_core.search.record import study_bounds
from demix_core.search.surrogate import KIND, SPREAD
from demix_core.view import figures
from demix_core.workspace.feasible import resolve_bounds

MIXTURE_KEY = "_mixture"  # the mixer's mixture, kept across pages (the URL's ?mixture= wins)
STATE_KEY = "_mixer_state"  # the SliderState
TIMES_KEY = "_mixer_times"  # seconds from the last mixture change to each kind of score on screen
CLIENT_KEY = "_mixer_client"
WRITTEN_KEY = "_mixer_written"  # the mixtures this session's page wrote into the URL, newest last
WRITTEN_KEEP = 256
FMT = f"%.{DIGITS}f"
SUITES = ("quick", "paper")
NUMBERS = {c: st.column_config.NumberColumn(format="%.4f", width="small")
           for c in ("predicted", "±", "merged weights", "output ensemble")}

st.title("Mixer")
ws = current_workspace()
if ws is None:
    st.stop()
root, storage = str(ws.root), ws.storage_url()
names = list(ws.component_names)
editing = can_edit()
study = study_picker(study_names(ws), label="Study (front, predictions, Add to study)")
settings = study_settings(root, storage, study) if study else None
# The study's suite when it has one of ours (its front and predictions are in that suite's units), else quick.
suite = settings["suite"] if settings and not settings["tasks"] and settings["suite"] in SUITES else "quick"
same_suite = bool(settings) and not settings["tasks"] and settings["suite"] == suite
wanted = st.query_params.get("mixture") or st.session_state.get(MIXTURE_KEY)
client = st.session_state.setdefault(CLIENT_KEY, uuid.uuid4().hex)


def _bounds() -> tuple[Bounds, str]:
    """The feasible set the sliders keep: the selected study's (stored from the budget when it was created), else the
    workspace's token budget, else the plain simplex; with where it comes from."""
    try:
        if study:
            return study_bounds(ws, study_attrs(root, storage, study)), f"study {md(study)}'s token budget"
        if not ws.budget.empty:
            return resolve_bounds(ws), "the workspace's token budget"
    except DemixError as exc:
        st.warning(f"The sliders ignore the token budget: {exc}")
    return Bounds.free(names), ""


bounds, bounds_from = _bounds()


def _start() -> SliderState:
    """The sliders start from ?mixture=... (a shared link or a clicked point), else equal weights."""
    weights = None
    if wanted:
        try:
            weights = ws.parse_mixture(wanted).as_dict()
        except DemixError as exc:
            st.warning(f"Ignoring the mixture in the link: {exc}")
    st.session_state["mixer_from"] = wanted
    return SliderState(names, weights)


# Mixtures this page wrote into the URL: a rerun asked for before the browser got the newest URL carries an older
# one of these, which is the page's own past, not a new link; only a mixture it never wrote restarts the sliders.
written = st.session_state.setdefault(WRITTEN_KEY, [])
state = st.session_state.get(STATE_KEY)
if not isinstance(state, SliderState) or state.names != tuple(names) or (
        st.session_state.get("mixer_from") != wanted and wanted not in written):
    state = st.session_state[STATE_KEY] = _start()
try:
    if state.set_bounds(bounds):
        st.info(f"Moved the mixture into {bounds_from}: the nearest mixture that keeps every dataset's bounds.")
except DemixError as exc:  # bounds with no mixture on the sliders' 1e-4 grid
    st.warning(f"The sliders ignore the token budget: {exc}")
    bounds, bounds_from = Bounds.free(names), ""
    state.set_bounds(None)


def report(kind: str, name: str) -> None:
    """A widget changed: note it; the script applies this rerun's reports at once (one place, see SliderState)."""
    st.session_state[STATE_KEY].report(kind, name, st.session_state.get(f"{kind}_{name}"))


locked = [n for n in names if st.session_state.get(f"lock_{n}")]
state.apply(locked)
text = state.text()
if st.query_params.get("mixture") != text:
    st.query_params["mixture"] = text
st.session_state["mixer_from"] = st.session_state[MIXTURE_KEY] = text
if text not in written:
    written.append(text)
    del written[:-WRITTEN_KEEP]
for kind in ("w", "n"):  # widgets that disagree with the state are rewritten; the one being moved never is
    for n, value in state.sync(kind, {n: st.session_state.get(f"{kind}_{n}") for n in names}).items():
        st.session_state[f"{kind}_{n}"] = value

ranges = state.ranges(locked)
left, right = st.columns([1, 1], gap="medium")
with left:
    methods = merge_methods()
    default_method = settings["method"] if settings and settings["method"] in methods else "linear"
    method = st.selectbox("Merge method", methods, index=methods.index(default_method), key="method")
    for n in names:
        c1, c2, c3 = st.columns([5, 3, 2], vertical_alignment="bottom")
        c1.slider(n, 0.0, 1.0, step=10 ** -DIGITS, format=FMT, key=f"w_{n}", on_change=report, args=("w", n),
                  help="arrow keys: 0.0001 from the exact weight; Shift+arrow or Page Up/Down: 0.1")
        c2.number_input(f"{n} weight", 0.0, 1.0, step=0.01, format=FMT, key=f"n_{n}", on_change=report,
                        args=("n", n), label_visibility="collapsed", help="type a weight, or step by 0.01")
        c3.checkbox("lock", key=f"lock_{n}")
        if state.bounds is not None:  # the budget's bound under each slider, narrower still when locks bind
            i = names.index(n)
            lo_n, hi_n = state.bounds.lo[i], state.bounds.hi[i]
            now_lo, now_hi = ranges[n]
            extra = "" if n in locked or (now_lo, now_hi) == (lo_n, hi_n) else \
                f"; {now_lo:.{DIGITS}f} – {now_hi:.{DIGITS}f} with the locks"
            st.caption(f"{n}: {lo_n:.{DIGITS}f} – {hi_n:.{DIGITS}f} under the budget{extra}")
    st.caption(f"The weights sum to {sum(state.units.values()) / 10 ** DIGITS:.{DIGITS}f}; the others absorb a "
               "change in proportion, locked ones stay. Slider keys step 0.0001 from the exact weight (Shift+arrow, "
               "Page Up/Down: 0.1); the number boxes step 0.01.")
    if state.bounds is not None:
        st.caption(f"Bounds from {bounds_from}: a weight set outside them snaps back to the nearest one inside, and "
                   "the others rebalance within theirs. Bounds are shown on the 1e-4 grid (min rounded up, max down).")
mixture = state.mixture()
weights = state.weights()
times: dict[str, float | int | bool] = {"version": state.version}
st.session_state[TIMES_KEY] = times

with right:
    st.subheader("Quick suite scores" if suite == "quick" else "Paper suite scores")
    status = st.empty()
    slots = st.empty()
    st.caption("Domain scores: predicted by the study's surrogate (± its spread), measured on the merged weights "
               "and on the output ensemble. Higher is better.")
    table_slot = st.empty()
    bench_slot = st.empty()

pred: dict[str, float] = {}
spread: dict[str, float] = {}
model = None
if study and same_suite:
    model = surrogate(root, storage, study, finished_trials(root, storage, study))
    if model is not None:
        pred, spread = model.predict(weights)


def show(values: dict[str, float], stage: str, note: str) -> None:
    """Draw one row of metrics (the scores on screen) and the status line above them."""
    status.caption(note)
    with slots.container():
        for col, (domain, value) in zip(st.columns(max(1, len(values))), values.items()):
            extra = f" ± {spread[domain]:.4f}" if stage == "predicted" and domain in spread else ""
            why = f"; ± is the fit's {SPREAD}" if extra else ""
            col.metric(f"{domain} · {stage}{extra}", f"{value:.4f}",
                       help=f"higher is better (negated bits per byte){why}")


def score_table(stage: str, merged: dict[str, float] | None = None, ensemble: dict[str, float] | None = None) -> None:
    """The domain scores side by side: predicted (± spread), measured on merged weights, on the output ensemble."""
    domains = list(pred or merged or {})
    rows: dict[str, list] = {"domain": domains}
    if pred:
        rows["predicted"] = [pred[d] for d in domains]
        rows["±"] = [spread[d] for d in domains]
    if merged is not None:
        rows["merged weights"] = [merged.get(d, np.nan) for d in domains]
    if ensemble is not None:
        rows["output ensemble"] = [ensemble.get(d, np.nan) for d in domains]
    table_slot.dataframe(pd.DataFrame(rows), hide_index=True, key=f"domain_scores_{stage}", column_config=NUMBERS)


if pred:
    show(pred, "predicted", f"**predicted** by the study's {KIND} fitted on {model.trials} finished trials (± its "
                            f"{SPREAD}) · measuring {md(mixture.label(DIGITS))}...")
    score_table("predicted")
    times["predicted_s"] = time.perf_counter() - state.changed_at
elif study and not same_suite:
    status.caption(f"No prediction: study {md(study)} scores with its own tasks, not a suite the Mixer runs. "
                   "Measuring...")
elif study:
    k = len(names) + 1
    status.caption(f"No prediction yet: the study needs {k} finished trials for its {KIND} "
                   f"(it has {finished_trials(root, storage, study)}). Measuring...")

try:
    eng = engine(root, suite)
except DemixError as exc:
    st.error(str(exc))
    st.stop()
runner = mixer_runner(root, suite)
workers = local_workers()
last_touch = [0.0]


def tick() -> None:
    """While waiting: a point where Streamlit stops this run for a newer value; keep local workers paused."""
    st.session_state.get(STATE_KEY)
    if time.monotonic() - last_touch[0] > 0.5:
        workers.mixer_busy()
        last_touch[0] = time.monotonic()


try:
    tick()
    ev = wait(runner.submit(client, measure, eng, mixture, method=method), tick=tick)
except DemixError as exc:
    st.error(str(exc))
    st.stop()
times["measured_s"] = time.perf_counter() - state.changed_at
times["recalled"] = ev.cached
how = "recalled (scored before)" if ev.cached else (f"merged in {ev.merge_seconds * 1e3:.0f} ms, scored in "
                                                     f"{ev.scores.seconds * 1e3:.0f} ms")
after = f" · on screen {times['measured_s'] * 1e3:.0f} ms after the change" if state.version else ""
measured_note = f"**measured** (merged weights, {method}) · {md(mixture.label(DIGITS))} · {how}{after}"
show(ev.scores.domains, "measured", measured_note)
if not eng.ensemble_built:  # with the ensemble ready its scores follow within a millisecond: one table then
    score_table("measured", ev.scores.domains)

ensemble = None
if eng.ensemble_built or editing:
    def ensemble_scores():  # noqa: ANN202 - Scores
        return eng.ensemble_scorer().score(mixture.weights)

    future = runner.submit(client, ensemble_scores, replace=False)
    try:
        if eng.ensemble_built:
            ensemble = wait(future, tick=tick)
        else:
            with st.spinner("Building the output-ensemble cache (once per suite: one pass of each component)..."):
                ensemble = wait(future, tick=tick)
        times["ensemble_s"] = time.perf_counter() - state.changed_at
    except (DemixError, OSError) as exc:
        st.caption(f"No output-ensemble scores: {md(exc)}")
score_table("final", ev.scores.domains, ensemble.domains if ensemble is not None else None)
bench = pd.DataFrame({"benchmark": list(ev.scores.benchmarks), "merged weights": list(ev.scores.benchmarks.values())})
if ensemble is not None:
    bench["output ensemble"] = [ensemble.benchmarks.get(b, np.nan) for b in ev.scores.benchmarks]
bench_slot.dataframe(bench, hide_index=True, key="bench_scores", column_config=NUMBERS)
with right:
    train_as_reference(ws, mixture, key="mixer")  # editors only; the job's progress survives a reload

trial = st.query_params.get("trial")
if trial and study and trial.isdigit():
    table = trials(root, storage, study)
    row = table[table["number"] == int(trial)] if len(table) else table
    recorded = "  ".join(f"{c[2:]} {row.iloc[0][c]:.4f}" for c in row.columns if c.startswith("d:")) \
        if len(row) else "not found"
    st.info(f"Opened from trial #{trial} of study {md(study)} (recorded scores: {md(recorded)}); the scores "
            "above are this mixture's, merged and scored now.")

if study and same_suite:
    finished = finished_trials(root, storage, study)
    remembered_trials(root, suite, storage, study, finished)  # a mixture a worker scored comes back at once
    frame = trials(root, storage, study)
    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    st.subheader(f"This mixture in study {md(study)}")
    dcols = [f"d:{d}" for d in settings["domains"]]
    if done.empty or not all(c in done for c in dcols):
        st.info(f"No finished trials in study {md(study)} yet: its front appears here once a worker has run.")
    else:
        v, a, b = st.columns([2, 3, 3], vertical_alignment="bottom")
        views = ["2D front", "3D front"] if len(dcols) >= 3 else ["2D front"]
        view = v.radio("Front", views, horizontal=True, key="mview", help="one at a time: each redraws per change")
        pair = None
        if len(dcols) >= 2 and view == "2D front":
            x = a.selectbox("x axis", dcols, index=0, key="mx", format_func=figures.plain_name)
            y = b.selectbox("y axis", dcols, index=1, key="my", format_func=figures.plain_name)
            pair = (x, y)
        tick()  # a newer slider value stops this run here, before the figures are built
        figs = {f.key: f.figure for f in figures.mixture_figures(done, list(mixture.weights), ev.scores.domains,
                                                                  pair=pair, front3d=view == "3D front",
                                                                  bounds=None if bounds.trivial else bounds)}
        f1, f2 = st.columns(2)
        if pair and f"front:{pair[0]}|{pair[1]}" in figs:
            f1.plotly_chart(figs[f"front:{pair[0]}|{pair[1]}"], key="mixer_front")
        if "front3d" in figs:
            f1.plotly_chart(figs["front3d"], key="mixer_front3d")
        if "ternary" in figs:
            f2.plotly_chart(figs["ternary"], key="mixer_map")
            if not bounds.trivial:
                f2.caption("Shaded: mixtures outside the token budget (each dataset's epochs and weight bounds).")
        m2 = st.container()
        near = nearest_trials(done, weights, k=5)
        cols = ["distance", "number", "source", *dcols, *[f"w:{n}" for n in names]]
        m2.caption("Nearest finished trials (L1 distance of the weights)")
        m2.dataframe(near[[c for c in cols if c in near]].rename(columns=figures.plain_name), hide_index=True,
                     key="nearest")

c1, c2, c3, c4 = st.columns(4)
if editing and study and c1.button("Add to study", key="enqueue", icon=":material/playlist_add:",
                                   help="record this mixture as a complete trial with the measured scores above"):
    require_edit()
    from demix_core.search.study import add_measured_trial, enqueue, load_study

    if not is_valid_study_name(study):
        st.error(f"Study {md(study)} has a name this dashboard does not write to; pick another study.")
    elif same_suite and method == settings["method"] and settings["proxy"] == "merge":
        try:
            number = add_measured_trial(load_study(ws, study), mixture, ev.scores, merge_seconds=ev.merge_seconds,
                                        source="mixer", device=str(eng.device))
            st.success(f"Added {mixture.label(DIGITS)} to study {md(study)} as trial #{number}, with the measured "
                       "scores above.")
        except DemixError as exc:
            st.error(str(exc))
    else:
        enqueue(load_study(ws, study), mixture, source="manual")
        why = ("the study scores with its own tasks" if not same_suite else
               f"the study merges with {settings['method']}, not {method}" if method != settings["method"] else
               f"the study scores the {settings['proxy']} proxy, not the merged weights")
        st.info(f"Queued {mixture.label(DIGITS)} in study {md(study)} ({md(why)}): a worker scores it next.")
c2.download_button("Recipe (JSON)", json.dumps(recipe(eng.resident, mixture, method=method, hashes=False), indent=2),
                   file_name="demix_recipe.json", key="dl_recipe")
c3.download_button("mergekit YAML", mergekit_yaml(eng.resident, mixture, method=method),
                   file_name="mergekit.yaml", key="dl_yaml")
if editing and c4.button("Export merged model", key="export", icon=":material/save:"):
    require_edit()
    from demix_core.export.merged import export_merged

    out = ws.root / "exports" / ("mix-" + "-".join(f"{n}{int(round(w * 100))}" for n, w in weights.items()))
    try:
        export_merged(eng.resident, mixture, out, method=method, force=True)
        st.success(f"Exported to {md(out)}")
    except DemixError as exc:
        st.error(str(exc))

st.caption("Training data config: this mixture for a training framework, with the workspace's dataset paths and token "
           "counts (each format states its unit).")
mixture_download(ws, mixture, key="mix_export")
