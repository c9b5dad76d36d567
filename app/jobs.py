"""Background jobs in the dashboard: a live progress panel and the start of a job.

The job itself is :mod:`demix_core.jobs` (a ``demix`` command in its own process; state and log under
``<workspace>/jobs/``), so its progress bar comes back after a page reload: the panel reads the job's
files, not the session.
"""

from __future__ import annotations

import time
from datetime import timedelta

import streamlit as st

from app.auth import can_edit, require_edit
from app.state import ROOT, md
from demix_core import jobs as core_jobs
from demix_core.errors import DemixError
from demix_core.workspace import Workspace


def job_panel(root: str, kind: str, *, key: str, every: float = 2.0) -> None:
    """The newest ``kind`` job of a workspace: a progress bar and its last log line while it runs (refreshed
    every ``every`` seconds), its outcome once it ended; a Stop button for editors."""

    @st.fragment(run_every=timedelta(seconds=every))
    def panel() -> None:
        job = core_jobs.latest(root, kind)
        if job is None:
            return
        fraction, last = job.progress()
        status = job.status
        elapsed = (job.ended or time.time()) - job.started
        label = f"{job.title or job.kind}: {status} ({elapsed:.0f} s)"
        if status == "running":
            st.progress(fraction or 0.0, text=f"{label} · {last[:160]}")
            if can_edit() and st.button("Stop", key=f"{key}_stop", icon=":material/stop:"):
                require_edit()
                core_jobs.stop(job)
        elif status == "done":
            st.success(label)
        else:
            st.error(f"{label}: {md(last[:300])}" if last else label)

    panel()


def start(ws: Workspace, kind: str, args: list[str], *, title: str) -> bool:
    """Start a job (editors only); show why not when it cannot start."""
    require_edit()
    try:
        core_jobs.start_job(ws.root, kind, args, title=title, cwd=ROOT)
    except DemixError as exc:
        st.warning(str(exc))
        return False
    return True

