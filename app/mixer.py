"""The Mixer's session: the selected study's suite, the feasible set the sliders keep, and the one
:class:`~demix_core.mixing.sliders.SliderState` that the sliders and number inputs are views of.

The mixture is exact to 1e-4 and always on the simplex and inside the token budget's bounds (the selected study's,
else the workspace's). Widgets report changes through :func:`report` (their ``on_change``); :func:`follow_widgets`
applies one rerun's reports, writes the mixture into the URL (``?mixture=``) and rewrites widgets that disagree.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.state import Workspace, md, study_attrs, study_settings
from demix_core.errors import DemixError
from demix_core.mixing.bounds import Bounds
from demix_core.mixing.sliders import DIGITS, SliderState
from demix_core.search.measured import scores_in_suite
from demix_core.search.record import study_bounds
from demix_core.workspace.feasible import resolve_bounds

__all__ = ["DIGITS", "FMT", "MIXTURE_KEY", "STATE_KEY", "TIMES_KEY", "Context", "bound_caption", "client_id",
           "context", "default_method", "follow_widgets", "report", "since_change", "slider_state", "sum_caption"]

MIXTURE_KEY = "_mixture"  # the mixer's mixture, kept across pages (the URL's ?mixture= wins)
STATE_KEY = "_mixer_state"  # the SliderState
TIMES_KEY = "_mixer_times"  # seconds from the last mixture change to each kind of score on screen
CLIENT_KEY = "_mixer_client"
WRITTEN_KEY = "_mixer_written"  # the mixtures this session's page wrote into the URL, newest last
WRITTEN_KEEP = 256
FMT = f"%.{DIGITS}f"
SUITES = ("quick", "paper")  # the suites the Mixer scores in


@dataclass(frozen=True)
class Context:
    """The open workspace and the selected study, as every part of the Mixer reads them.

    Attributes:
        suite: The study's suite when it has one of :data:`SUITES` (its front and predictions are in that suite's
            units), else ``quick``.
        same_suite: Whether the study scores in ``suite`` (not with its own tasks): its predictions, front and
            recorded scores then apply to what the Mixer measures.
    """

    ws: Workspace
    root: str
    storage: str
    names: list[str]
    study: str | None
    settings: dict[str, Any] | None
    attrs: dict[str, Any]
    suite: str
    same_suite: bool


def context(ws: Workspace, study: str | None) -> Context:
    """The Mixer's context for workspace ``ws`` and the selected ``study`` (or none)."""
    root, storage = str(ws.root), ws.storage_url()
    settings = study_settings(root, storage, study) if study else None
    attrs = study_attrs(root, storage, study) if study else {}
    suite = settings["suite"] if settings and not settings["tasks"] and settings["suite"] in SUITES else "quick"
    return Context(ws, root, storage, list(ws.component_names), study, settings, attrs, suite,
                   bool(settings) and scores_in_suite(attrs, suite))


def client_id() -> str:
    """This session's id on the engine's background runner (newest request first per client)."""
    return str(st.session_state.setdefault(CLIENT_KEY, uuid.uuid4().hex))


def default_method(ctx: Context, methods: list[str]) -> int:
    """The index in ``methods`` of the study's merge method, else of ``linear``."""
    method = ctx.settings["method"] if ctx.settings and ctx.settings["method"] in methods else "linear"
    return methods.index(method)


def _bounds(ctx: Context) -> tuple[Bounds, str]:
    """The feasible set the sliders keep: the selected study's (stored from the budget when it was created), else the
    workspace's token budget, else the plain simplex; with where it comes from."""
    try:
        if ctx.study:
            return study_bounds(ctx.ws, ctx.attrs), f"study {md(ctx.study)}'s token budget"
        if not ctx.ws.budget.empty:
            return resolve_bounds(ctx.ws), "the workspace's token budget"
    except DemixError as exc:
        st.warning(f"The sliders ignore the token budget: {exc}")
    return Bounds.free(ctx.names), ""


def _start(ctx: Context, wanted: str | None) -> SliderState:
    """The sliders start from ?mixture=... (a shared link or a clicked point), else equal weights."""
    weights = None
    if wanted:
        try:
            weights = ctx.ws.parse_mixture(wanted).as_dict()
        except DemixError as exc:
            st.warning(f"Ignoring the mixture in the link: {exc}")
    st.session_state["mixer_from"] = wanted
    return SliderState(ctx.names, weights)


def slider_state(ctx: Context) -> tuple[SliderState, Bounds, str]:
    """This session's slider state inside the feasible set, with the set and where it comes from (``""``: none).

    The state restarts from the link's mixture only when the link carries one this page never wrote (a rerun asked
    for before the browser got the newest URL carries an older one of these: the page's own past, not a new link).
    """
    wanted = st.query_params.get("mixture") or st.session_state.get(MIXTURE_KEY)
    bounds, bounds_from = _bounds(ctx)
    written = st.session_state.setdefault(WRITTEN_KEY, [])
    state = st.session_state.get(STATE_KEY)
    if not isinstance(state, SliderState) or state.names != tuple(ctx.names) or (
            st.session_state.get("mixer_from") != wanted and wanted not in written):
        state = st.session_state[STATE_KEY] = _start(ctx, wanted)
    try:
        if state.set_bounds(bounds):
            st.info(f"Moved the mixture into {bounds_from}: the nearest mixture that keeps every dataset's bounds.")
    except DemixError as exc:  # bounds with no mixture on the sliders' 1e-4 grid
        st.warning(f"The sliders ignore the token budget: {exc}")
        bounds, bounds_from = Bounds.free(ctx.names), ""
        state.set_bounds(None)
    return state, bounds, bounds_from


def report(kind: str, name: str) -> None:
    """A widget changed: note it; the script applies this rerun's reports at once (one place, see SliderState)."""
    st.session_state[STATE_KEY].report(kind, name, st.session_state.get(f"{kind}_{name}"))


def follow_widgets(state: SliderState) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Apply this rerun's widget reports, put the mixture in the URL, rewrite widgets that disagree with it (never
    the one being moved); return the locked components and each slider's range now."""
    names = list(state.names)
    locked = [n for n in names if st.session_state.get(f"lock_{n}")]
    state.apply(locked)
    text = state.text()
    if st.query_params.get("mixture") != text:
        st.query_params["mixture"] = text
    st.session_state["mixer_from"] = st.session_state[MIXTURE_KEY] = text
    written = st.session_state.setdefault(WRITTEN_KEY, [])
    if text not in written:
        written.append(text)
        del written[:-WRITTEN_KEEP]
    for kind in ("w", "n"):
        for n, value in state.sync(kind, {n: st.session_state.get(f"{kind}_{n}") for n in names}).items():
            st.session_state[f"{kind}_{n}"] = value
    return locked, state.ranges(locked)


def bound_caption(state: SliderState, name: str, ranges: dict[str, tuple[float, float]],
                  locked: list[str]) -> str | None:
    """The budget's bound under a slider, narrower still when locks bind (None without bounds)."""
    if state.bounds is None:
        return None
    i = state.names.index(name)
    lo_n, hi_n = state.bounds.lo[i], state.bounds.hi[i]
    now_lo, now_hi = ranges[name]
    extra = "" if name in locked or (now_lo, now_hi) == (lo_n, hi_n) else \
        f"; {now_lo:.{DIGITS}f} – {now_hi:.{DIGITS}f} with the locks"
    return f"{name}: {lo_n:.{DIGITS}f} – {hi_n:.{DIGITS}f} under the budget{extra}"


def sum_caption(state: SliderState) -> str:
    """What the weights sum to, and how the sliders and number boxes move them."""
    return (f"The weights sum to {sum(state.units.values()) / 10 ** DIGITS:.{DIGITS}f}; the others absorb a change in "
            "proportion, locked ones stay. Slider keys step 0.0001 from the exact weight (Shift+arrow, Page Up/Down: "
            "0.1); the number boxes step 0.01.")


def since_change(state: SliderState) -> float:
    """Seconds since the mixture last changed (the page times each kind of score on screen from it)."""
    return time.perf_counter() - state.changed_at
