"""Background jobs in the dashboard: a live progress panel, and the "Train as reference" control.

The job itself is :mod:`demix_core.background.jobs` (a ``demix`` command in its own process; state and log under
``<workspace>/jobs/``), so its progress bar comes back after a page reload: the panel reads the job's
files, not the session.

Any page can offer training a mixture as a reference::

    from app.jobs import train_as_reference
    train_as_reference(ws, mixture, key="mixer")   # button (editors only) + live progress of the last run

and the Recommend page trains its recommendation (with the loop's baselines) by :func:`train_recommendation`.
"""

from __future__ import annotations

import time
from datetime import timedelta

import streamlit as st

from app.auth import can_edit, require_edit
from app.state import ROOT, md
from demix_core.background import jobs as core_jobs
from demix_core.errors import DemixError
from demix_core.mixing.mixture import Mixture
from demix_core.workspace.manifest import Workspace

TRAIN_KIND = "train-reference"


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


def train_as_reference(ws: Workspace, mixture: Mixture, *, key: str, name: str | None = None) -> None:
    """"Train as reference": trains ``mixture`` like the workspace's references (``demix workspace
    train-reference``) as a background job, then adds it to the references; shows the last training's progress.

    Only for workspaces with datasets (a note otherwise); the button is drawn for editors only.
    """
    if not ws.datasets:
        st.caption("Training a reference needs the workspace's datasets (the demo has them).")
        return
    if can_edit() and st.button("Train as reference", key=f"{key}_train", icon=":material/model_training:",
                                help="Train a model on this mixture with the references' recipe (minutes) and add "
                                     "it to the workspace's references"):
        args = ["workspace", "train-reference", str(ws.root), "--mixture",
                str(mixture)]  # every weight, 6 significant digits (the one formatter)
        if name:
            args += ["--name", name]
        if start(ws, TRAIN_KIND, args, title=f"train {name or 'reference'} on {mixture.label(2)}"):
            st.toast("Training started; progress below survives a reload.")
    job_panel(str(ws.root), TRAIN_KIND, key=f"{key}_job")


def train_recommendation(ws: Workspace, study: str, storage: str, *, top_k: int, samples: int, weighting: str,
                         key: str) -> None:
    """"Train as reference" for a study's recommendation: ``demix recommend --train`` as a background job (the same
    fit, then the recommendation and, when asked, the baselines trained as references); the Validate page then
    shows how it ranks. Editors only; shows the last training's progress to everyone."""
    if not ws.datasets:
        st.caption("Training a reference needs the workspace's datasets (the demo has them).")
        return
    if can_edit():
        c1, c2 = st.columns([1, 2])
        with_baselines = c2.checkbox("With the baselines (uniform, natural, best trial, null pick)", value=True,
                                     key=f"{key}_baselines",
                                     help="Validation needs them to say whether the recommendation wins")
        if c1.button("Train as reference", key=f"{key}_train", icon=":material/model_training:",
                     help="Train the recommended mixture with the references' recipe (minutes per model) and add "
                          "it to the workspace's references"):
            args = ["recommend", "--workspace", str(ws.root), "--study", study, "--storage", storage, "--top-k",
                    str(int(top_k)), "--samples", str(int(samples)), "--weighting", weighting, "--train"]
            if not with_baselines:
                args.append("--no-baselines")
            if start(ws, TRAIN_KIND, args, title=f"train the recommendation of {study}"
                                                 + (" and its baselines" if with_baselines else "")):
                st.toast("Training started; progress below survives a reload.")
    job_panel(str(ws.root), TRAIN_KIND, key=f"{key}_job")
