"""Mixer page: tune a mixture by eye. Predicted scores at once, the merged proxy's measured scores right after.

The mixture lives in one slider state (``app.mixer``: exact to 1e-4, always on the simplex and inside the token
budget's bounds: the selected study's, else the workspace's); sliders and number inputs are views of it, and each
bounded slider has its range written under it. While a slider moves, the selected study's surrogate predicts the
scores; the measurement runs on the engine's background thread and the page waits for it at a point where Streamlit
can interrupt it (``app.mixer_scores``), so a newer slider value starts a new run at once and the newest position is
measured next.
"""

from __future__ import annotations

import streamlit as st

from app.auth import can_edit, require_edit
from app.errors import DemixError
from app.figures import SCORE_UNIT, front_key, mixture_figure_set, plain_name, score_note
from app.jobs import train_as_reference
from app.mixer import (
    DIGITS,
    FMT,
    TIMES_KEY,
    bound_caption,
    client_id,
    context,
    default_method,
    follow_widgets,
    report,
    since_change,
    slider_state,
    sum_caption,
)
from app.mixer_actions import add_to_study, export_model, mergekit_text, recipe_json
from app.mixer_scores import (
    NUMBERS,
    SCORES_CAPTION,
    Measurer,
    bench_frame,
    measured_note,
    metric_label,
    nearest_columns,
    nearest_frame,
    opened_trial_note,
    predict,
    prediction_note,
    score_frame,
    study_trials,
)
from app.mixture_download import mixture_download
from app.state import Workspace, complete_trials, current_workspace, md, merge_methods, study_names, study_picker
from app.table_fits import NUMBERS as TABLE_NUMBERS
from app.table_fits import fit_caption, fitted, nearest_runs, objective_scores, prediction_frame, unmeasured_note
from app.tables import IMPORT_HINT, UNIT, no_checkpoints, run_keys


def sliders(state, names: list[str], ranges, locked: list[str], bounds_from: str) -> None:  # noqa: ANN001
    """One slider, number box and lock per component (``state``: the SliderState; ``ranges``: each slider's range
    now), the budget's bound under each slider and the sum under them all."""
    for n in names:
        c1, c2, c3 = st.columns([5, 3, 2], vertical_alignment="bottom")
        c1.slider(n, 0.0, 1.0, step=10 ** -DIGITS, format=FMT, key=f"w_{n}", on_change=report, args=("w", n),
                  help="arrow keys: 0.0001 from the exact weight; Shift+arrow or Page Up/Down: 0.1")
        c2.number_input(f"{n} weight", 0.0, 1.0, step=0.01, format=FMT, key=f"n_{n}", on_change=report,
                        args=("n", n), label_visibility="collapsed", help="type a weight, or step by 0.01")
        c3.checkbox("lock", key=f"lock_{n}")
        caption = bound_caption(state, n, ranges, locked)
        if caption is not None:  # the budget's bound under each slider, narrower still when locks bind
            st.caption(caption)
    st.caption(sum_caption(state))
    if state.bounds is not None:
        st.caption(f"Bounds from {bounds_from}: a weight set outside them snaps back to the nearest one inside, and "
                   "the others rebalance within theirs. Bounds are shown on the 1e-4 grid (min rounded up, max down).")


def fronts(done, dcols: list[str], weights: list[float], scores: dict[str, float], bounds, *,  # noqa: ANN001
           tick=lambda: None, label: str = "this mixture", unit: str = SCORE_UNIT) -> None:  # noqa: ANN001
    """The study's front (2D or 3D, axes chosen here) and mixture map with this mixture marked at ``scores``;
    ``tick`` runs once the widgets are drawn, before the figures are built."""
    v, a, b = st.columns([2, 3, 3], vertical_alignment="bottom")
    views = ["2D front", "3D front"] if len(dcols) >= 3 else ["2D front"]
    view = v.radio("Front", views, horizontal=True, key="mview", help="one at a time: each redraws per change")
    pair = None
    if len(dcols) >= 2 and view == "2D front":
        x = a.selectbox("x axis", dcols, index=0, key="mx", format_func=plain_name)
        y = b.selectbox("y axis", dcols, index=1, key="my", format_func=plain_name)
        pair = (x, y)
    tick()  # a newer slider value stops this run here, before the figures are built
    figs = mixture_figure_set(done, weights, scores, pair=pair, front3d=view == "3D front", bounds=bounds,
                              label=label, unit=unit)
    f1, f2 = st.columns(2)
    if pair and front_key(pair) in figs:
        f1.plotly_chart(figs[front_key(pair)], key="mixer_front")
    if "front3d" in figs:
        f1.plotly_chart(figs["front3d"], key="mixer_front3d")
    if "ternary" in figs:
        f2.plotly_chart(figs["ternary"], key="mixer_map")
        if not bounds.trivial:
            f2.caption("Shaded: mixtures outside the token budget (each dataset's epochs and weight bounds).")


def table_mixer(ws: Workspace) -> None:
    """A table workspace: sliders over its domains, the predictor fitted on the study's runs (± its out-of-fold
    error, a fit label per metric), the study's front and nearest runs, and the training-framework download."""
    ctx = context(ws, study_picker(study_names(ws), label="Study (front, predictions)"))
    state, bounds, bounds_from = slider_state(ctx)
    locked, ranges = follow_widgets(state)
    left, right = st.columns([1, 1], gap="medium")
    with left:
        sliders(state, ctx.names, ranges, locked, bounds_from)
    weights = state.weights()
    times: dict[str, float | int | bool] = {"version": state.version}
    st.session_state[TIMES_KEY] = times
    fit = fitted(ctx.root, ctx.storage, ctx.study) if ctx.study else "No study yet: " + IMPORT_HINT
    with right:
        st.subheader("Predicted scores")
        if isinstance(fit, str):
            st.info(fit)
        else:
            predicted = fit.predict(weights)
            st.dataframe(prediction_frame(fit, predicted), hide_index=True, key="table_prediction",
                         column_config=TABLE_NUMBERS)
            times["predicted_s"] = since_change(state)
            st.caption(fit_caption(fit))
        st.caption(unmeasured_note())
    if not isinstance(fit, str) and ctx.study:
        done = complete_trials(ctx.root, ctx.storage, ctx.study)
        st.subheader(f"This mixture in study {md(ctx.study)}")
        fronts(done, [f"d:{o}" for o in fit.objectives], list(weights.values()), objective_scores(fit, predicted),
               bounds, label="this mixture (predicted)", unit=UNIT)
        st.caption("Nearest imported runs (L1 distance of the weights), as the table wrote them")
        st.dataframe(nearest_runs(done, weights, run_keys(ctx.root, ctx.storage, ctx.study, len(done))),
                     hide_index=True, key="nearest")
    st.caption(no_checkpoints("there is no merged model to export or recipe to download: train on the mixture "
                              "with the config below"))
    st.caption("Training data config: this mixture for a training framework, with the path of each domain's data "
               "(each format states its unit).")
    mixture_download(ws, state.mixture(), key="mix_export")


st.title("Mixer")
ws = current_workspace()
if ws is None:
    st.stop()
if ws.is_table:
    table_mixer(ws)
    st.stop()
editing = can_edit()
ctx = context(ws, study_picker(study_names(ws), label="Study (front, predictions, Add to study)"))
names, study = ctx.names, ctx.study
client = client_id()
state, bounds, bounds_from = slider_state(ctx)
locked, ranges = follow_widgets(state)

left, right = st.columns([1, 1], gap="medium")
with left:
    methods = merge_methods()
    method = st.selectbox("Merge method", methods, index=default_method(ctx, methods), key="method")
    sliders(state, names, ranges, locked, bounds_from)
mixture = state.mixture()
weights = state.weights()
times: dict[str, float | int | bool] = {"version": state.version}
st.session_state[TIMES_KEY] = times

with right:
    st.subheader("Quick suite scores" if ctx.suite == "quick" else "Paper suite scores")
    status = st.empty()
    slots = st.empty()
    st.caption(SCORES_CAPTION)
    table_slot = st.empty()
    bench_slot = st.empty()
    note_slot = st.empty()

prediction = predict(ctx, weights)


def show(values: dict[str, float], stage: str, note: str) -> None:
    """Draw one row of metrics (the scores on screen) and the status line above them."""
    status.caption(note)
    with slots.container():
        for col, (domain, value) in zip(st.columns(max(1, len(values))), values.items()):
            label, why = metric_label(domain, stage, prediction.spread)
            col.metric(label, f"{value:.4f}", help=why)


def score_table(stage: str, measured: dict[str, dict[str, float]] | None = None) -> None:
    """The domain scores side by side: predicted (± spread), then each proxy kind's (merged weights, output
    ensemble)."""
    table_slot.dataframe(score_frame(prediction, measured), hide_index=True, key=f"domain_scores_{stage}",
                         column_config=NUMBERS)


note = prediction_note(ctx, prediction, mixture)
if prediction.scores and note:
    show(prediction.scores, "predicted", note)
    score_table("predicted")
    times["predicted_s"] = since_change(state)
elif note:
    status.caption(note)

try:
    measurer = Measurer(ctx, client)
    ev = measurer.merged(mixture, method)
except DemixError as exc:
    st.error(str(exc))
    st.stop()
eng = measurer.engine
measured_s = times["measured_s"] = since_change(state)
times["recalled"] = ev.cached
show(ev.scores.domains, "measured", measured_note(ev, method, mixture, seconds=measured_s, changed=bool(state.version)))
if not measurer.others_ready:  # with the other kinds ready their scores follow within a millisecond: one table then
    score_table("measured", {measurer.label: ev.scores.domains})

beside = measurer.others(mixture, build=editing)  # the output ensemble's, by label
if beside:
    times["ensemble_s"] = since_change(state)  # the other kinds' scores on screen
measured = {measurer.label: ev.scores, **beside}
score_table("final", {label: scores.domains for label, scores in measured.items()})
bench_slot.dataframe(bench_frame(measured), hide_index=True, key="bench_scores", column_config=NUMBERS)
note_slot.caption(score_note(ev.scores.benchmarks))
with right:
    train_as_reference(ws, mixture, key="mixer")  # editors only; the job's progress survives a reload

opened = opened_trial_note(ctx)
if opened:
    st.info(opened)

in_study = study_trials(ctx)  # a mixture a worker scored comes back at once from here on
if in_study is not None:
    done, dcols = in_study
    st.subheader(f"This mixture in study {md(study)}")
    if done.empty or not all(c in done for c in dcols):
        st.info(f"No finished trials in study {md(study)} yet: its front appears here once a worker has run.")
    else:
        fronts(done, dcols, list(mixture.weights), ev.scores.domains, bounds, tick=measurer.tick)
        m2 = st.container()
        m2.caption("Nearest finished trials (L1 distance of the weights): their domain scores (−bpb), then their "
                   "weights")
        m2.dataframe(nearest_frame(done, weights, dcols), hide_index=True, key="nearest",
                     column_config=nearest_columns(weights))

c1, c2, c3, c4 = st.columns(4)
if editing and study and c1.button("Add to study", key="enqueue", icon=":material/playlist_add:",
                                   help="record this mixture as a complete trial with the measured scores above"):
    require_edit()
    add_to_study(ctx, mixture, ev, method=method, device=str(eng.device))
c2.download_button("Recipe (JSON)", recipe_json(eng, mixture, method), file_name="demix_recipe.json", key="dl_recipe")
c3.download_button("mergekit YAML", mergekit_text(eng, mixture, method), file_name="mergekit.yaml", key="dl_yaml")
if editing and c4.button("Export merged model", key="export", icon=":material/save:"):
    require_edit()
    export_model(ctx, eng, mixture, weights, method)

st.caption("Training data config: this mixture for a training framework, with the workspace's dataset paths and token "
           "counts (each format states its unit).")
mixture_download(ws, mixture, key="mix_export")
