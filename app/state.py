"""Shared dashboard state: the allowed root, the open workspace, cached resources."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from demix_core.errors import WorkspaceError
from demix_core.workspace import Workspace, load_workspace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKSPACE = ROOT / "workspace" / "demo"


def allowed_root() -> Path:
    """Workspaces may only be opened under this folder (DEMIX_ALLOWED_ROOT, default: the repo)."""
    return Path(os.environ.get("DEMIX_ALLOWED_ROOT", str(ROOT))).resolve()


def workspace_path() -> Path:
    """The workspace folder chosen in the URL / session (default: the demo)."""
    chosen = st.query_params.get("ws") or st.session_state.get("workspace") or str(DEFAULT_WORKSPACE)
    return Path(chosen)


def open_workspace(path: Path) -> Workspace:
    """Load a workspace inside the allowed root.

    Raises:
        WorkspaceError: Outside the allowed root, or not a workspace.
    """
    resolved = path.resolve()
    root = allowed_root()
    if resolved != root and root not in resolved.parents:
        raise WorkspaceError(f"{path} is outside the allowed root {root}; "
                             "open a folder inside it or set DEMIX_ALLOWED_ROOT")
    return load_workspace(resolved)
