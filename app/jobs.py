"""Background jobs in the dashboard: a live progress panel, and the "Train as reference" control.

The job itself is :mod:`demix_core.background.jobs` (a ``demix`` command in its own process; state and log under
``<workspace>/jobs/``), so its progress bar comes back after a page reload: the panel reads the job's
files, not the session.

Any page can offer training a mixture as a reference::

    from app.jobs import train_as_reference
    train_as_reference(ws, mixture, key="mixer")   # button (editors only) + live progress of the last run

the Recommend and Validate pages train a study's recommendation (with the loop's baselines) by
:func:`train_recommendation`, and the Validate page a set of references by :func:`train_references`.
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
REFERENCES_KIND = "train-references"  # a set of references (``demix workspace train-references``)
# A set's default size: with seed 0 the demo's own 16 (`demix demo --references 16` trains the same models), and
# with fewer the proxies' rank correlations have intervals too wide to tell them apart.
REFERENCE_COUNT = 16
ADD_REFERENCE = ("`demix workspace add-reference DIR --name N --path P --mixture a=0.5,b=0.5` adds a model trained "
                 "elsewhere on a known mixture")


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

    Only for workspaces that can train (:meth:`Workspace.training_problem`; a note otherwise); the button is drawn
    for editors only.
    """
    problem = ws.training_problem()
    if problem:
        st.caption(f"Training a reference cannot run here: {md(problem)}.")
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


def train_references(ws: Workspace, *, key: str) -> None:
    """"Train N references": ``demix workspace train-references`` as a background job (mixtures of the paper's
    prior, each trained with the workspace's recipe, with their trained proxies), editors only; the last set's
    progress for everyone. A workspace that cannot train (no datasets, ...) gets a note on adding references."""
    problem = ws.training_problem()
    if problem:
        st.info(f"{md(problem)}. {ADD_REFERENCE}.")
        return
    if can_edit():
        c1, c2, c3 = st.columns([1, 2, 2], vertical_alignment="bottom")
        count = int(c1.number_input("References", 1, 999, REFERENCE_COUNT, key=f"{key}_count"))
        proxies = c2.checkbox("With their trained proxies", value=True, key=f"{key}_proxies",
                              help="For each mixture, also the paper's compute-matched trained proxy (a short run: "
                                   "the components' steps / 112), a baseline validation compares against")
        if c3.button(f"Train {count} references", key=f"{key}_train", icon=":material/model_training:",
                     help="Each trains like a component (the workspace's recipe); resumable, trained mixtures are "
                          "skipped"):
            args = ["workspace", "train-references", str(ws.root), "--count", str(count)]
            if not proxies:
                args.append("--no-trained-proxies")
            if start(ws, REFERENCES_KIND, args, title=f"train {count} references"):
                st.toast("Training started; progress below survives a reload.")
    job_panel(str(ws.root), REFERENCES_KIND, key=f"{key}_job")


def train_recommendation(ws: Workspace, study: str, storage: str, *, key: str, top_k: int | None = None,
                         samples: int | None = None, weighting: str | None = None, pick: str | None = None,
                         against: str | None = None, confidence: float | None = None, beat: str | None = None,
                         label: str = "Train as reference") -> None:
    """``label`` for a study's recommendation: ``demix recommend --train`` as a background job (the same fit, with
    the command's defaults for ``top_k``, ``samples``, ``weighting``, ``pick`` and ``against`` (with its
    ``confidence`` and ``beat``) unless given, then the recommendation and, when asked, the baselines trained as
    references; a mixture given to beat joins them); the Validate page then shows how it ranks. Editors only;
    shows the last training's progress to everyone."""
    problem = ws.training_problem()
    if problem:
        st.caption(f"Training the recommendation cannot run here: {md(problem)}.")
        return
    if can_edit():
        c1, c2 = st.columns([1, 2])
        with_baselines = c2.checkbox("With the baselines (uniform, natural, best trial, null pick)", value=True,
                                     key=f"{key}_baselines",
                                     help="Validation needs them to say whether the recommendation wins")
        if c1.button(label, key=f"{key}_train", icon=":material/model_training:",
                     help="Train the recommended mixture with the references' recipe (minutes per model) and add "
                          "it to the workspace's references"):
            args = ["recommend", "--workspace", str(ws.root), "--study", study, "--storage", storage]
            for flag, value in (("--top-k", top_k), ("--samples", samples), ("--weighting", weighting),
                                ("--pick", pick), ("--against", against), ("--confidence", confidence),
                                ("--beat", beat)):
                if value is not None:
                    args += [flag, str(value)]
            args.append("--train")
            if not with_baselines:
                args.append("--no-baselines")
            if start(ws, TRAIN_KIND, args, title=f"train the recommendation of {study}"
                                                 + (" and its baselines" if with_baselines else "")):
                st.toast("Training started; progress below survives a reload.")
    job_panel(str(ws.root), TRAIN_KIND, key=f"{key}_job")
