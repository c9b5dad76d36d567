"""The Mixer's scores: the study surrogate's prediction at once, the merged proxy's measurement on the engine's
background thread (latest first), every other proxy kind's after it (the output ensemble: :mod:`demix_core.proxy`);
and the tables, notes and study view they fill.

The measurement runs on :class:`~demix_core.background.latest.LatestFirst` and the page waits for it at a point where
Streamlit can interrupt it (:meth:`Measurer.tick`), so a newer slider value starts a new run at once and the newest
position is measured next; while it waits, the workers started from this dashboard pause.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app.figures import metric_unit, plain_name, rounded_distance
from app.mixer import DIGITS, STATE_KEY, Context
from app.state import complete_trials, engine, finished_trials, md, mixer_runner, remembered_trials, surrogate, trials
from app.workers import local_workers
from demix_core.background.latest import measure, wait
from demix_core.errors import DemixError
from demix_core.mixing.mixture import Mixture
from demix_core.proxy import get_kind, kind_names
from demix_core.search.nearest import nearest_trials
from demix_core.search.surrogate import KIND, SPREAD

LABELS = [get_kind(k).label for k in kind_names()]  # one column per proxy kind: "merged weights", "output ensemble"
HEADERS = {"merged weights": "merged", "output ensemble": "ensemble"}  # short headers: the tables fit at 1280 px
NUMBERS = {"domain": st.column_config.TextColumn("domain (−bpb)", help=f"domain score: {metric_unit('domain')}"),
           "benchmark": st.column_config.TextColumn("benchmark/metric", help="each metric as measured"),
           "predicted": st.column_config.NumberColumn(format="%.4f", help="the study's surrogate"),
           "±": st.column_config.NumberColumn(format="%.4f", help=f"the surrogate's {SPREAD}"),
           **{label: st.column_config.NumberColumn(HEADERS.get(label, label), format="%.4f", help=f"on the {label}")
              for label in LABELS}}
SCORES_CAPTION = ("Domain scores predicted by the study's surrogate (± its spread) and measured on the "
                  + " and on the ".join(f"{label} ({HEADERS.get(label, label)})" for label in LABELS) + ".")


@dataclass(frozen=True)
class Prediction:
    """The study surrogate's domain scores for the mixture (empty without a fitted surrogate), ± its spread."""

    model: Any = None
    scores: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)


def predict(ctx: Context, weights: Mapping[str, float]) -> Prediction:
    """The selected study's surrogate prediction, when the study scores in the Mixer's suite and has enough trials."""
    if not (ctx.study and ctx.same_suite):
        return Prediction()
    model = surrogate(ctx.root, ctx.storage, ctx.study, finished_trials(ctx.root, ctx.storage, ctx.study))
    if model is None:
        return Prediction()
    scores, spread = model.predict(weights)
    return Prediction(model, scores, spread)


def prediction_note(ctx: Context, prediction: Prediction, mixture: Mixture) -> str | None:
    """The status line while measuring: where the prediction comes from, or why there is none."""
    if prediction.scores:
        return (f"**predicted** by the study's {KIND} fitted on {prediction.model.trials} finished trials (± its "
                f"{SPREAD}) · measuring {md(mixture.label(DIGITS))}...")
    if ctx.study and not ctx.same_suite:
        return (f"No prediction: study {md(ctx.study)} scores with its own tasks, not a suite the Mixer runs. "
                "Measuring...")
    if ctx.study:
        return (f"No prediction yet: the study needs {len(ctx.names) + 1} finished trials for its {KIND} "
                f"(it has {finished_trials(ctx.root, ctx.storage, ctx.study)}). Measuring...")
    return None


def metric_label(domain: str, stage: str, spread: Mapping[str, float]) -> tuple[str, str]:
    """(label, help) of one domain's metric at ``stage`` (``predicted`` shows ± its spread; the status line above
    the metrics names the stage in bold, so the label stays short enough for five domains at 1280 px)."""
    extra = f" ± {spread[domain]:.4f}" if stage == "predicted" and domain in spread else ""
    why = f"; ± is the fit's {SPREAD}" if extra else ""
    return f"{domain}{extra}", f"{stage}: {metric_unit(domain)}{why}"


def score_frame(prediction: Prediction, measured: Mapping[str, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """The domain scores side by side: predicted (± spread), then each proxy kind's measurement (its label: its
    domain scores), e.g. on the merged weights and on the output ensemble."""
    measured = measured or {}
    domains = list(prediction.scores or next(iter(measured.values()), {}))
    rows: dict[str, list] = {"domain": domains}
    if prediction.scores:
        rows["predicted"] = [prediction.scores[d] for d in domains]
        rows["±"] = [prediction.spread[d] for d in domains]
    for label, scores in measured.items():
        rows[label] = [scores.get(d, np.nan) for d in domains]
    return pd.DataFrame(rows)


def bench_frame(measured: Mapping[str, Any]) -> pd.DataFrame:
    """Per benchmark: each measured proxy kind's score (its label: its Scores; the first names the benchmarks)."""
    first = next(iter(measured.values()))
    bench = pd.DataFrame({"benchmark": list(first.benchmarks)})
    for label, scores in measured.items():
        bench[label] = [scores.benchmarks.get(b, np.nan) for b in first.benchmarks]
    return bench


class Measurer:
    """Measures the session's mixtures on the suite's engine, newest first (one background thread per engine).

    Raises:
        DemixError: The engine cannot be built (on construction).
    """

    def __init__(self, ctx: Context, client: str) -> None:
        self.engine = engine(ctx.root, ctx.suite)
        self.runner = mixer_runner(ctx.root, ctx.suite)
        self.client = client
        self._workers = local_workers()
        self._touched = 0.0

    def tick(self) -> None:
        """While waiting: a point where Streamlit stops this run for a newer value; keep local workers paused."""
        st.session_state.get(STATE_KEY)
        if time.monotonic() - self._touched > 0.5:
            self._workers.mixer_busy()
            self._touched = time.monotonic()

    @property
    def label(self) -> str:
        """The Mixer's label of the engine's own proxy kind (the merged weights)."""
        return self.engine.kind().label

    @property
    def others_ready(self) -> bool:
        """Whether every other proxy kind scores at once (nothing to build first)."""
        return all(self.engine.kind(k).ready for k in kind_names() if k != self.engine.proxy_kind)

    def merged(self, mixture: Mixture, method: str) -> Any:
        """The mixture's evaluation on the merged weights (``scores``, ``cached``, ``merge_seconds``)."""
        self.tick()
        return wait(self.runner.submit(self.client, measure, self.engine, mixture, method=method), tick=self.tick)

    def others(self, mixture: Mixture, *, build: bool) -> dict[str, Any]:
        """Every other proxy kind's scores (its label: its Scores) when it is ready (or may build what it needs now:
        ``build``); a note instead when they cannot be had. Queued behind the merged measurement of the same
        mixture."""
        out = {}
        for name in kind_names():
            kind = self.engine.kind(name)
            if name != self.engine.proxy_kind and (kind.ready or build):
                scores = self._other(mixture, kind)
                if scores is not None:
                    out[kind.label] = scores
        return out

    def _other(self, mixture: Mixture, kind: Any) -> Any | None:
        eng = self.engine
        future = self.runner.submit(self.client, lambda: eng.evaluate(mixture, proxy=kind.name).scores, replace=False)
        try:
            if kind.ready:
                return wait(future, tick=self.tick)
            with st.spinner(f"Building the {kind.label} (once per suite: {kind.preparing})..."):
                return wait(future, tick=self.tick)
        except (DemixError, OSError) as exc:
            st.caption(f"No {kind.label} scores: {md(exc)}")
            return None


def measured_note(ev: Any, method: str, mixture: Mixture, *, seconds: float, changed: bool) -> str:
    """The status line of a measurement: how it was had, and how long after the change it was on screen."""
    how = "recalled (scored before)" if ev.cached else (f"merged in {ev.merge_seconds * 1e3:.0f} ms, scored in "
                                                         f"{ev.scores.seconds * 1e3:.0f} ms")
    after = f" · on screen {seconds * 1e3:.0f} ms after the change" if changed else ""
    return f"**measured** ({get_kind(ev.proxy).label}, {method}) · {md(mixture.label(DIGITS))} · {how}{after}"


def opened_trial_note(ctx: Context) -> str | None:
    """When the Mixer was opened from a study's trial (``?trial=``): that trial's recorded scores, in words."""
    trial = st.query_params.get("trial")
    if not (trial and ctx.study and trial.isdigit()):
        return None
    table = trials(ctx.root, ctx.storage, ctx.study)
    row = table[table["number"] == int(trial)] if len(table) else table
    recorded = "  ".join(f"{c[2:]} {row.iloc[0][c]:.4f}" for c in row.columns if c.startswith("d:")) \
        if len(row) else "not found"
    return (f"Opened from trial #{trial} of study {md(ctx.study)} (recorded scores: {md(recorded)}); the scores above "
            "are this mixture's, merged and scored now.")


def study_trials(ctx: Context) -> tuple[pd.DataFrame, list[str]] | None:
    """The selected study's complete trials and domain columns, when its scores apply to the Mixer's (else None).

    The engine is given the study's recorded scores first: a mixture a worker scored comes back at once.
    """
    if not (ctx.study and ctx.same_suite and ctx.settings):
        return None
    remembered_trials(ctx.root, ctx.suite, ctx.storage, ctx.study, finished_trials(ctx.root, ctx.storage, ctx.study))
    return complete_trials(ctx.root, ctx.storage, ctx.study), [f"d:{d}" for d in ctx.settings["domains"]]


def nearest_columns(weights: Mapping[str, float]) -> dict[str, Any]:
    """The nearest-trials table's column config: the distance in 4 decimals, each weight headed by its component
    alone (the caption says they are weights), so five components and three domains fit at 1280 px."""
    return {"distance": st.column_config.NumberColumn(format="%.4f", help="L1 distance of the weights, 0 to 2"),
            **{plain_name(f"w:{n}"): st.column_config.NumberColumn(n, help=f"{n}'s weight in the trial's mixture")
               for n in weights}}


def nearest_frame(done: pd.DataFrame, weights: Mapping[str, float], dcols: list[str]) -> pd.DataFrame:
    """The five finished trials nearest the mixture (L1 distance of the weights, rounded to 4 decimals), the columns
    as people read them."""
    near = rounded_distance(nearest_trials(done, weights, k=5))
    cols = ["distance", "number", "source", *dcols, *[f"w:{n}" for n in weights]]
    return near[[c for c in cols if c in near]].rename(columns=plain_name)
