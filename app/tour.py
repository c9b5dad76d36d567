"""The tour in the dashboard: its progress and current step (a live panel that survives a reload: it reads the tour
record and its job's log, not the session), and "waiting for ..." notes that fill their page when its part lands.

The tour itself is :mod:`demix_core.tour` (``demix tour``, a background job that ``make run`` starts)::

    from app.tour import tour_panel, wait_for
    tour_panel(root, key="ws")                                 # progress bar, current step, stages, Start / Continue
    if wait_for(root, "study", "the tour's study", key="st"):  # True while the stage is still to come: stop the page
        st.stop()
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from app.auth import can_edit, require_edit
from demix_core.background.jobs import stop as stop_job
from demix_core.errors import DemixError
from demix_core.tour import state as tour_state
from demix_core.tour.run import remaining, start_tour
from demix_core.tour.stages import NAMES
from demix_core.tour.status import DONE, TourStatus, duration, tour_status

TOUR_STAGE = {"quick": "validate", "paper": "paper"}  # the stage that first validates on each suite
REFRESH = 2.0  # seconds between refreshes of a live panel
REPOSITORY = Path(__file__).resolve().parent.parent


def status(root: str | Path) -> TourStatus:
    """Where the tour of a workspace folder stands (cheap: two small files)."""
    return tour_status(root)


def stages_frame(tour: TourStatus) -> pd.DataFrame:
    """One row per stage: what it does, its status, its count, the time it took (or takes so far)."""
    return pd.DataFrame([{"stage": f"{i}. {s.name}", "what": s.title, "status": s.status,
                          "progress": f"{s.done:,} of {s.total:,}" if s.done is not None and s.total else "",
                          "time": duration(s.seconds)} for i, s in enumerate(tour.stages, 1)])


def headline(tour: TourStatus) -> str:
    """One line: where the tour stands."""
    n = len(tour.stages)
    if tour.finished:
        said = f" Per domain, {tour.sentence}." if tour.sentence else ""
        return f"The tour is done ({duration(tour.seconds())} of work): the verdict is on the Validate page.{said}"
    cur = tour.current
    if cur is None:
        return "The tour has not started yet."
    i = tour.stages.index(cur) + 1
    count = f" ({cur.done:,} of {cur.total:,})" if cur.done is not None and cur.total else ""
    if cur.status == "running":
        return f"Stage {i} of {n}: {cur.title}{count}."
    if cur.status == "failed":
        return f"Stage {i} of {n} ({cur.name}) failed: {cur.error}"
    return f"Stage {i} of {n} ({cur.name}) stopped when its process ended{count}; Continue picks it up."


def _start_button(root: str, tour: TourStatus, *, key: str) -> None:
    """Start / Continue the tour (editors): a background job, joined when one runs."""
    if not can_edit() or tour.running:
        return
    record = tour_state.read_state(root)
    until = record.get("until") or NAMES[-1]
    if not remaining(root, until):
        return
    label = "Continue the tour" if tour.started else "Build the demo and take it to a verdict"
    if st.button(label, key=f"{key}_start", icon=":material/play_arrow:", type="primary",
                 help="Components, references, validation, a study, the recommendation trained, validation again: "
                      "about 30 minutes on 2 CPU cores, in the background (the dashboard stays usable)"):
        require_edit()
        try:
            start_tour(root, until=until, quick=bool(record.get("quick")), cwd=REPOSITORY)
        except DemixError as exc:
            st.warning(str(exc))
            return
        st.toast("The tour runs in the background; its progress survives a reload.")


def tour_panel(root: str | Path, *, key: str, expanded: bool = False) -> None:
    """The tour's live panel: a progress bar over all stages, the current step (the job's last log line), the stages
    table, and Start / Continue for editors. Shows nothing for a workspace whose tour never started, unless it is
    still to be built (then the Start button)."""
    root = str(root)

    @st.fragment(run_every=timedelta(seconds=REFRESH))
    def panel() -> None:
        tour = status(root)
        if not tour.stages and Path(root, "demix.yaml").exists():
            return
        if tour.running:
            st.progress(tour.fraction(), text=headline(tour))
            if tour.last_line:
                st.caption(f"Now: {tour.last_line[:200]}")
            if can_edit() and st.button("Stop the tour", key=f"{key}_stop", icon=":material/stop:",
                                        help="Stops after the current step's process ends; Continue resumes it"):
                require_edit()
                stop_job(tour.job)
        elif tour.finished:
            st.success(headline(tour), icon=":material/task_alt:")
        elif tour.started:
            st.warning(headline(tour), icon=":material/pause_circle:")
        _start_button(root, tour, key=key)
        if tour.stages:
            with st.expander("The tour's stages", expanded=expanded):
                st.dataframe(stages_frame(tour), hide_index=True, key=f"{key}_stages")

    panel()


def has_tour(root: str | Path) -> bool:
    """Whether a tour was ever started in this folder."""
    return bool(status(root).stages)


def waiting(root: str | Path, stage: str) -> bool:
    """Whether a page's part is still to come from the tour: the stage is planned and not done."""
    s = status(root).of(stage)
    return s is not None and s.status != DONE


def wait_for(root: str | Path, stage: str, what: str, *, key: str, progress: bool = True) -> bool:
    """When ``stage`` of the tour is still to come: say what the page waits for, show the tour's progress (unless
    ``progress`` is False: the page shows :func:`tour_panel`), and rerun the page once the stage is done (the page
    fills itself). Returns whether it waits (the page then stops)."""
    if not waiting(root, stage):
        return False
    root = str(root)

    @st.fragment(run_every=timedelta(seconds=REFRESH))
    def note() -> None:
        tour = status(root)
        s = tour.of(stage)
        if s is None or s.status == DONE:
            st.rerun(scope="app")
        i = NAMES.index(stage) + 1
        st.info(f"Waiting for {what}: stage {i} of {len(tour.stages)} of the tour ({s.status if s else 'waiting'}). "
                "This page fills itself when it lands.", icon=":material/hourglass_top:")
        if not progress:
            return
        if tour.running:
            st.progress(tour.fraction(), text=headline(tour))
        elif tour.started:
            st.caption(headline(tour) + " The Workspace page continues it.")

    note()
    return True
