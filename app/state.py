"""Shared dashboard state: the allowed root, the open workspace, the selected study, cached engines and studies.

Pages hold widgets only; everything they show comes from ``demix_core`` through ``app`` (these helpers, and one
module per page's needs: ``workspaces``, ``studies``, ``mixer``, ``recommending``, ``validation``; ``workers`` for the
worker processes started here).
``st.cache_resource`` holds engines (components resident, never mutated by a page except through the
engine's own merge); one incremental trial table per study (``TrialTable``) follows the Optuna storage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from demix_core.errors import WorkspaceError
from demix_core.search.picks import DEFAULT_CONFIDENCE, DEFAULT_PICK
from demix_core.workspace.manifest import Workspace, load_workspace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKSPACE = ROOT / "workspace" / "demo"


class OutsideRootError(WorkspaceError):
    """A folder outside the allowed root: the dashboard neither opens nor makes a workspace there."""


def allowed_root() -> Path:
    """Workspaces may only be opened under this folder (DEMIX_ALLOWED_ROOT, default: the repository)."""
    return Path(os.environ.get("DEMIX_ALLOWED_ROOT", str(ROOT))).resolve()


def inside_allowed_root(path: Path) -> Path:
    """``path`` resolved, when it is the allowed root or a folder under it (the one check, to open or to make).

    Raises:
        OutsideRootError: It is outside the allowed root.
    """
    resolved = path.resolve()
    root = allowed_root()
    if resolved != root and root not in resolved.parents:
        raise OutsideRootError(f"{path} is outside the allowed root {root}; choose a folder inside it or start the "
                               "dashboard with DEMIX_ALLOWED_ROOT set")
    return resolved


def md(text: object) -> str:
    """Text from a storage or a user, safe inside Streamlit markdown (no formatting, links or HTML)."""
    out = str(text).replace("\\", "\\\\")
    for ch in "`*_[]()<>#+-.!|~{}$":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


STUDY_KEY = "_study"  # the chosen study, kept across pages (widgets' own state is dropped on navigation)


def remember_study(name: str) -> None:
    """Make ``name`` the selected study on every page and in the URL (``?study=``)."""
    st.session_state[STUDY_KEY] = name
    st.query_params["study"] = name


def keep_study_in_url() -> None:
    """Put the session's study back into the URL after a navigation cleared the query parameters."""
    name = st.session_state.get(STUDY_KEY)
    if name and "study" not in st.query_params:
        st.query_params["study"] = name


def selected_study(names: list[str]) -> str | None:
    """The study the user chose last (link or session), if it exists; else the first one."""
    for candidate in (st.query_params.get("study"), st.session_state.get(STUDY_KEY)):
        if candidate in names:
            remember_study(candidate)
            return candidate
    if names:
        remember_study(names[0])
        return names[0]
    return None


def _picked() -> None:
    remember_study(st.session_state["_study_pick"])


def study_picker(names: list[str], *, label: str = "Study") -> str | None:
    """A sidebar selectbox over ``names`` that follows and sets the selected study."""
    current = selected_study(names)
    if current is None:
        return None
    st.session_state["_study_pick"] = current  # set before the widget: the choice survives navigation
    st.sidebar.selectbox(label, names, key="_study_pick", on_change=_picked)
    return current


def workspace_path() -> Path:
    """The workspace chosen in the URL or the session (default: the demo)."""
    chosen = st.query_params.get("ws") or st.session_state.get("workspace") or os.environ.get(
        "DEMIX_WORKSPACE", str(DEFAULT_WORKSPACE))
    return Path(chosen)


def remember_workspace(root: Path, *, in_url: bool = True) -> None:
    """Make ``root`` the open workspace of this session (and of the link, ``?ws=``, when ``in_url``)."""
    st.session_state["workspace"] = str(root)
    if in_url:
        st.query_params["ws"] = str(root)


def open_workspace(path: Path) -> Workspace:
    """Load a workspace inside the allowed root.

    Raises:
        WorkspaceError: Outside the allowed root (:class:`OutsideRootError`), or not a workspace.
    """
    return load_workspace(inside_allowed_root(path))


def current_workspace() -> Workspace | None:
    """The open workspace, or None after showing why it cannot be opened."""
    from app.tour import wait_for

    path = workspace_path()
    try:
        ws = open_workspace(path)
    except WorkspaceError as exc:
        if not isinstance(exc, OutsideRootError) and wait_for(path, "components", "the demo's components",
                                                                key="ws_build"):
            return None  # the tour builds it: the page opens once the components land
        st.error(str(exc))
        st.info("Open the Workspace page to build the demo or choose another folder.")
        return None
    st.session_state["workspace"] = str(ws.root)
    return ws


@st.cache_resource(show_spinner="Loading components onto the device...")
def engine(root: str, suite: str, device: str = "auto"):  # noqa: ANN201 - demix_core.engine.Engine
    """One engine per workspace, suite and device, shared by every session of this server."""
    from demix_core.engine import Engine

    return Engine(load_workspace(root), suite=suite, device=device)


def merge_methods() -> list[str]:
    """The registered merge methods, for a page's method picker."""
    from demix_core.merge import method_names

    return method_names()


def sampler_names() -> list[str]:
    """The registered samplers, for a page's sampler picker (in registration order)."""
    from demix_core.search import samplers

    return samplers.names()


@st.cache_resource(show_spinner=False, max_entries=32)
def _trial_table(root: str, storage: str, study_name: str):  # noqa: ANN202 - demix_core TrialTable
    from demix_core.search.study import load_study
    from demix_core.search.trials import TrialTable

    return TrialTable(load_study(load_workspace(root), study_name, storage=storage))


def study_attrs(root: str, storage: str, study_name: str) -> dict[str, Any]:
    """The study's user attributes (its settings, its feasible set...), from the cached trial table."""
    return dict(_trial_table(root, storage, study_name).study.user_attrs)


def feasible_set(root: str, storage: str, study_name: str):  # noqa: ANN201 - demix_core.mixing.bounds.Bounds | None
    """The study's feasible set (stored from the workspace's token budget when it was created), or None."""
    from demix_core.search import record

    return record.stored_bounds(_trial_table(root, storage, study_name).study.user_attrs)


def trials(root: str, storage: str, study_name: str) -> pd.DataFrame:
    """The study's trial table: one incremental reader per study shared by all sessions (only new and
    unfinished trials are read from the storage on each call). Treat the frame as read-only."""
    return _trial_table(root, storage, study_name).frame()


def complete_trials(root: str, storage: str, study_name: str) -> pd.DataFrame:
    """The study's COMPLETE trials (rows of :func:`trials`; read-only)."""
    frame = trials(root, storage, study_name)
    return frame[frame["state"] == "COMPLETE"] if len(frame) else frame


def finished_trials(root: str, storage: str, study_name: str) -> int:
    """How many of the study's trials are complete (the key of every cached fit on them)."""
    frame = trials(root, storage, study_name)
    return int((frame["state"] == "COMPLETE").sum()) if len(frame) else 0


@st.cache_data(show_spinner="Fitting the predictor...", max_entries=32)
def recommendation(root: str, storage: str, study_name: str, finished: int, *, top_k: int, samples: int,
                   weighting: str, pick: str = DEFAULT_PICK, against: str | None = None,
                   confidence: float = DEFAULT_CONFIDENCE, beat: str = "every",
                   floor: dict[str, float] | None = None):  # noqa: ANN201 - Recommendation | dict
    """The study's recommendation (a demix_core Recommendation), fitted once per (study, finished trials,
    settings) for every session; with ``against`` (``natural``, ``uniform`` or ``name=w,...``) only a candidate
    expected to beat that mixture beyond the noise ``floor`` (:func:`noise_floor`) at ``confidence``, on ``beat``
    ``every`` domain or the weighted ``total``. When none qualifies: the screen's plain data
    (:meth:`demix_core.search.against.Screen.to_json`, its ``summary`` says which domain blocks) instead.

    ``finished`` is only a cache key: a new finished trial makes a new fit; another widget change does not.

    Raises:
        DemixError: Too few trials, a bad ``against``, ... (one line, for the page).
    """
    from demix_core.search.against import NothingBeats
    from demix_core.search.recommend import against_mixture, recommend_for_study
    from demix_core.search.study import load_study

    ws = load_workspace(root)
    study = load_study(ws, study_name, storage=storage)
    judged = None
    if against is not None:
        from demix_core.search import record

        judged = against_mixture(ws, record.domains(study), against, floor=floor, confidence=confidence, beat=beat,
                                 weighting=weighting)
    try:
        return recommend_for_study(ws, study, top_k=top_k, samples=samples, weighting=weighting, against=judged,
                                   pick=pick)
    except NothingBeats as exc:
        return exc.screen.to_json()


def noise_floor(ws: Workspace, study_name: str) -> tuple[dict[str, float] | None, str]:
    """The noise floor per domain a study's recommendation is judged with, and where it comes from
    (:func:`demix_core.validation.noise.study_floor`: the suite's last validation, or a table's repeated runs).
    Read on every run (one small file): a new validation changes it, and with it the cached fit's key."""
    from demix_core.validation.noise import study_floor

    return study_floor(ws, _trial_table(str(ws.root), ws.storage_url(), study_name).study)


@st.cache_data(show_spinner="Fitting the predictor...", max_entries=32)
def in_sample_fit(root: str, storage: str, study_name: str,
                  finished: int) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """(domains, predicted, measured) of the predictor fitted on the study's finished trials, per domain.

    Cached per (study, finished trials) like :func:`recommendation`.
    """
    from demix_core.search.predictor import Predictor
    from demix_core.search.recommend import training_data
    from demix_core.search.study import load_study

    study = load_study(load_workspace(root), study_name, storage=storage)
    domains = list(study.metric_names or [])
    x, y = training_data(study)
    model = Predictor.fit(x, {d: y[d] for d in domains})
    return domains, model.predict(x), {d: y[d] for d in domains}


def study_settings(root: str, storage: str, study_name: str) -> dict[str, Any]:
    """The study's own settings: ``components``, ``domains`` (objective order), ``suite``, ``method``, ``tasks``,
    ``proxy`` (the proxy kind its workers score)."""
    from demix_core.search import record

    study = _trial_table(root, storage, study_name).study
    attrs = study.user_attrs
    return {"components": record.components(attrs), "domains": record.domains(study), "suite": record.suite(attrs),
            "method": record.method(attrs), "tasks": ",".join(record.tasks(attrs)) or None,
            "proxy": record.study_proxy(study)}


@st.cache_resource(show_spinner=False, max_entries=32)
def surrogate(root: str, storage: str, study_name: str, finished: int):  # noqa: ANN201 - Surrogate | None
    """The study's Scheffé surrogate, fitted once per (study, finished trials) for every session.

    ``finished`` is only a cache key (see :func:`recommendation`).
    """
    from demix_core.search.surrogate import Surrogate

    done = complete_trials(root, storage, study_name)
    settings = study_settings(root, storage, study_name)
    return Surrogate.fit(done, settings["components"], settings["domains"])


@st.cache_resource(show_spinner=False)
def mixer_runner(root: str, suite: str, device: str = "auto"):  # noqa: ANN201 - demix_core.background.latest.LatestFirst
    """One background thread per engine measuring the Mixer's mixtures, newest request first per session."""
    from demix_core.background.latest import LatestFirst

    return LatestFirst()


@st.cache_resource(show_spinner=False, max_entries=64)
def remembered_trials(root: str, suite: str, storage: str, study_name: str, finished: int) -> int:
    """Give the engine the study's recorded scores once per (study, finished trials): a mixture a worker
    already scored is then shown at once. Call after the engine measured once (its scores are the template)."""
    settings = study_settings(root, storage, study_name)
    if settings["tasks"]:
        return 0
    from optuna.trial import TrialState

    done = _trial_table(root, storage, study_name).study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    from demix_core.search.record import measured_results

    return engine(root, suite).remember_trials(measured_results(done), method=settings["method"],
                                               suite=settings["suite"])


@st.cache_resource(show_spinner=False, max_entries=8)
def _storage(url: str):  # noqa: ANN202 - optuna BaseStorage
    from demix_core.search.storage import open_storage

    return open_storage(url)


def study_names(ws: Workspace) -> list[str]:
    """Studies in the workspace's storage; none (and no file created) when a file storage does not exist."""
    from demix_core.search.storage import study_names as names

    url = ws.storage_url()
    for scheme in ("sqlite:///", "journal:"):
        if url.startswith(scheme) and not Path(url[len(scheme):]).exists():
            return []  # opening it would create it: a viewer, or a fresh workspace, writes nothing
    return names(_storage(url))
