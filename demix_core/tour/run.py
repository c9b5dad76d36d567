"""Run the tour, stage by stage, resuming where an earlier run stopped; or start it as a background job (joining
one that runs already)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demix_core.tour import state
from demix_core.tour.stages import NAMES, Context, Stage, TourSettings, stages_until
from demix_core.tour.state import Stopped

JOB_KIND = state.JOB_KIND


def run_tour(root: str | os.PathLike[str], *, until: str = NAMES[-1], settings: TourSettings | None = None,
             quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage up to ``until`` that is not done yet; return the tour record.

    A stage is done once its record says so; a stage that was running when its process died (or that failed)
    runs again, and its own work resumes (trained models are kept). Each stage starts with a line
    ``tour [i/n] NAME: TITLE`` and ends with ``tour [i/n] NAME done in S s``.

    Args:
        root: The demo workspace folder (made when missing).
        until: The last stage to run (``components`` stops after the demo's components).
        settings: Sizes (default: the demo's; ``quick`` gives the tiny ones).
        quick: Tiny sizes (tests).
        log: Where progress lines go.

    Raises:
        DemixError: A stage failed (its record says ``failed`` with the message; the next run retries it).
        Stopped: A stop was asked (SIGTERM); the stage stays ``running`` in the record (shown as stopped).
    """
    s = settings or (TourSettings.quick() if quick else TourSettings())
    folder = Path(root).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    todo = stages_until(until)
    state.set_field(folder, until=until, quick=quick, references=s.references, trials=s.trials,
                    stages_planned=[st.name for st in todo])
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main else None  # a stop asked ends the run, not the stage
    try:
        for i, stage in enumerate(todo, 1):
            _run_stage(stage, i, len(todo), Context(folder, s, log), log)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    return state.read_state(folder)


def _run_stage(stage: Stage, i: int, n: int, ctx: Context, log: Callable[[str], None]) -> None:
    """Run one stage unless it is done, recording its start, its progress count and its end."""
    from demix_core.errors import DemixError

    folder = ctx.root
    if state.stage_record(folder, stage.name).get("status") == "done":
        return
    ctx.log = _counting_log(stage, ctx, log)
    log(f"tour [{i}/{n}] {stage.name}: {stage.title}")
    state.mark(folder, stage.name, "running", pid=os.getpid())
    started = time.perf_counter()
    try:
        stage.run(ctx)
    except Stopped:
        log(f"tour [{i}/{n}] {stage.name} stopped; the next run resumes it")
        raise
    except DemixError as exc:
        state.mark(folder, stage.name, "failed", error=str(exc))
        raise
    except BaseException as exc:
        state.mark(folder, stage.name, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    _record_count(stage, ctx, final=True)
    state.mark(folder, stage.name, "done")
    log(f"tour [{i}/{n}] {stage.name} done in {time.perf_counter() - started:.0f} s")


def _stop(signum: int, frame: Any) -> None:
    raise Stopped(f"signal {signum}")


def _counting_log(stage: Stage, ctx: Context, log: Callable[[str], None]) -> Callable[[str], None]:
    """``log``, recording the stage's progress count (when it changed) after every line."""

    def counted(line: str) -> None:
        log(line)
        _record_count(stage, ctx)

    return counted


def _record_count(stage: Stage, ctx: Context, *, final: bool = False) -> None:
    try:
        count = stage.count(ctx)
    except Exception:  # a count is for the progress bar only: it never stops the stage
        return
    if count is None or (not final and ctx.cache.get("_count") == count):
        return
    ctx.cache["_count"] = count
    entry = state.stage_record(ctx.root, stage.name)
    if entry.get("status") == "running" or final:
        state.update_stage(ctx.root, stage.name, done=count[0], total=count[1])


def start_tour(root: str | os.PathLike[str], *, until: str = NAMES[-1], quick: bool = False,
               cwd: str | os.PathLike[str] | None = None) -> tuple[Any, bool]:
    """Start ``demix tour`` as a background job of the workspace, unless one runs already.

    Returns:
        (the job, whether it was started now): a running tour is joined, never started twice.
    """
    from demix_core.background.jobs import start_or_join

    args = ["tour", "--workspace", str(Path(root).resolve()), "--until", until] + (["--quick"] if quick else [])
    return start_or_join(root, JOB_KIND, args, title="the demo tour" + (" (quick)" if quick else ""),
                         threads=os.cpu_count() or 1, cwd=cwd)


def remaining(root: str | os.PathLike[str], until: str = NAMES[-1]) -> list[str]:
    """The stages up to ``until`` that are not done."""
    return [s.name for s in stages_until(until) if state.stage_record(root, s.name).get("status") != "done"]
