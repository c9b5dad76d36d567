"""What the Mixer does with its mixture: add it to the selected study (or queue it for a worker), the recipe and
mergekit downloads, and the merged model's export. Editors only for the writes (the page asks first)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app.mixer import DIGITS, Context
from app.state import md
from demix_core.errors import DemixError
from demix_core.export.merged import export_merged, mergekit_yaml, recipe
from demix_core.io.names import is_valid_study_name
from demix_core.mixing.mixture import Mixture
from demix_core.search.measured import place_measured
from demix_core.search.study import add_measured_trial, enqueue, load_study


def add_to_study(ctx: Context, mixture: Mixture, ev: Any, *, method: str, device: str) -> None:
    """Record the measured mixture in the selected study as a COMPLETE trial when it is the study's own kind of trial
    (:func:`~demix_core.search.measured.place_measured`), else queue it for a worker; say which and why."""
    study = ctx.study
    if study is None:
        return
    if not is_valid_study_name(study):
        st.error(f"Study {md(study)} has a name this dashboard does not write to; pick another study.")
        return
    placement = place_measured(ctx.attrs, suite=ctx.suite, method=method, proxy=ev.proxy)
    if placement.add:
        try:
            number = add_measured_trial(load_study(ctx.ws, study), mixture, ev.scores, merge_seconds=ev.merge_seconds,
                                        source="mixer", device=device, proxy=ev.proxy)
            st.success(f"Added {mixture.label(DIGITS)} to study {md(study)} as trial #{number}, with the measured "
                       "scores above.")
        except DemixError as exc:
            st.error(str(exc))
        return
    enqueue(load_study(ctx.ws, study), mixture, source="manual")
    st.info(f"Queued {mixture.label(DIGITS)} in study {md(study)} ({md(placement.reason)}): a worker scores it next.")


def recipe_json(eng: Any, mixture: Mixture, method: str) -> str:
    """The merge recipe of the mixture on the engine's components (JSON, without checkpoint hashes)."""
    return json.dumps(recipe(eng.resident, mixture, method=method, hashes=False), indent=2)


def mergekit_text(eng: Any, mixture: Mixture, method: str) -> str:
    """The mixture as a mergekit configuration (YAML)."""
    return mergekit_yaml(eng.resident, mixture, method=method)


def export_model(ctx: Context, eng: Any, mixture: Mixture, weights: dict[str, float], method: str) -> None:
    """Write the merged model under the workspace's ``exports/`` (named by its weights in percent); say where, or
    why not."""
    out = ctx.ws.root / "exports" / ("mix-" + "-".join(f"{n}{int(round(w * 100))}" for n, w in weights.items()))
    try:
        export_merged(eng.resident, mixture, out, method=method, force=True)
        st.success(f"Exported to {md(out)}")
    except DemixError as exc:
        st.error(str(exc))
