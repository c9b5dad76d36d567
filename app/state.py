"""Shared dashboard state: the allowed root, the open workspace, cached engines, studies and workers.

Pages hold widgets only; everything they show comes from ``demix_core`` through these helpers.
``st.cache_resource`` holds engines (components resident, never mutated by a page except through the
engine's own merge); one incremental trial table per study (``TrialTable``) follows the Optuna storage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from demix_core.errors import WorkspaceError
from demix_core.workspace import Workspace, load_workspace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKSPACE = ROOT / "workspace" / "demo"


def allowed_root() -> Path:
    """Workspaces may only be opened under this folder (DEMIX_ALLOWED_ROOT, default: the repository)."""
    return Path(os.environ.get("DEMIX_ALLOWED_ROOT", str(ROOT))).resolve()


def read_only() -> bool:
    """Viewer mode (``?view=1``): nothing that changes a study or writes a file is shown."""
    return st.query_params.get("view") == "1"


def workspace_path() -> Path:
    """The workspace chosen in the URL or the session (default: the demo)."""
    chosen = st.query_params.get("ws") or st.session_state.get("workspace") or os.environ.get(
        "DEMIX_WORKSPACE", str(DEFAULT_WORKSPACE))
    return Path(chosen)


def open_workspace(path: Path) -> Workspace:
    """Load a workspace inside the allowed root.

    Raises:
        WorkspaceError: Outside the allowed root, or not a workspace.
    """
    resolved = path.resolve()
    root = allowed_root()
    if resolved != root and root not in resolved.parents:
        raise WorkspaceError(f"{path} is outside the allowed root {root}; open a folder inside it "
                             "or start the dashboard with DEMIX_ALLOWED_ROOT set")
    return load_workspace(resolved)


def current_workspace() -> Workspace | None:
    """The open workspace, or None after showing why it cannot be opened."""
    try:
        ws = open_workspace(workspace_path())
    except WorkspaceError as exc:
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


@st.cache_resource(show_spinner=False, max_entries=32)
def _trial_table(root: str, storage: str, study_name: str):  # noqa: ANN202 - demix_core TrialTable
    from demix_core.search.study import TrialTable, load_study

    return TrialTable(load_study(load_workspace(root), study_name, storage=storage))


def trials(root: str, storage: str, study_name: str) -> pd.DataFrame:
    """The study's trial table: one incremental reader per study shared by all sessions (only new and
    unfinished trials are read from the storage on each call). Treat the frame as read-only."""
    return _trial_table(root, storage, study_name).frame()


@st.cache_resource(show_spinner=False, max_entries=8)
def _storage(url: str):  # noqa: ANN202 - optuna BaseStorage
    from demix_core.search.study import open_storage

    return open_storage(url)


def study_names(ws: Workspace) -> list[str]:
    """Studies in the workspace's storage."""
    from demix_core.search.study import study_names as names

    return names(_storage(ws.storage_url()))


@dataclass
class LocalWorkers:
    """Worker processes started from this dashboard (shared by sessions)."""

    procs: list[tuple[subprocess.Popen, str, str, float]] = field(default_factory=list)

    def start(self, ws: Workspace, study: str, device: str) -> None:
        cmd = [sys.executable, "-m", "demix_core", "worker", "--workspace", str(ws.root), "--study", study,
               "--device", device]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append((proc, study, device, time.time()))

    def stop(self, study: str) -> None:
        for proc, s, _, _ in self.procs:
            if s == study and proc.poll() is None:
                proc.terminate()

    def table(self, study: str) -> pd.DataFrame:
        rows = [{"pid": p.pid, "device": d, "started": time.strftime("%H:%M:%S", time.localtime(t)),
                 "status": "alive" if p.poll() is None else f"dead (exit {p.returncode})"}
                for p, s, d, t in self.procs if s == study]
        return pd.DataFrame(rows)


@st.cache_resource
def local_workers() -> LocalWorkers:
    """The registry of workers started from this server; they are stopped when the server exits."""
    import atexit
    import signal

    workers = LocalWorkers()

    def stop_all(*_: object) -> None:
        for proc, _s, _d, _t in workers.procs:
            if proc.poll() is None:
                proc.terminate()

    atexit.register(stop_all)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: object) -> None:
        stop_all()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(0)

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: atexit still covers a normal shutdown
        pass
    return workers
