"""Worker processes started from this dashboard: one registry per server, shared by every session.

A worker is ``demix worker`` in its own process (:func:`demix_core.search.launch.start_workers`, through the one
launcher :mod:`demix_core.background.launch`), in the background so the Mixer stays responsive beside it; while the
Mixer measures it touches the registry's yield file and the workers started here pause. They are stopped when the
server exits.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pandas as pd
import streamlit as st

from app.state import ROOT
from demix_core.workspace.manifest import Workspace


@dataclass
class LocalWorkers:
    """Worker processes started from this dashboard (shared by sessions)."""

    procs: list[tuple[subprocess.Popen, str, str, float, int]] = field(default_factory=list)
    yield_file: str = ""  # touched by the Mixer while it measures; made when the first worker starts

    def start(self, ws: Workspace, study: str, device: str, *, trials: int = 100) -> int:
        """Start ``demix worker`` for ``study``; it stops once ``trials`` more trials are complete.

        Returns:
            The study's complete-trial count at which the worker stops.
        """
        from demix_core.io.names import check_study_name
        from demix_core.search.launch import start_workers
        from demix_core.search.study import counts, load_study

        check_study_name(study)
        target = counts(load_study(ws, study)).get("COMPLETE", 0) + max(1, int(trials))
        if not self.yield_file:
            import weakref

            from demix_core.background.launch import new_yield_file

            self.yield_file = new_yield_file()
            weakref.finalize(self, Path(self.yield_file).unlink, missing_ok=True)  # gone with us (or at exit)
        # In the background: the Mixer stays responsive beside it (see demix_core.background.launch).
        [proc] = start_workers(ws.root, study, n_trials=target, device=device, cwd=ROOT, quiet=True, background=True,
                               yield_file=self.yield_file)
        self.procs.append((proc, study, device, time.time(), target))
        return target

    def mixer_busy(self) -> None:
        """The Mixer is measuring: workers started here pause (before their next trial and between forward passes)."""
        if self.yield_file:
            from demix_core.background.launch import touch

            touch(self.yield_file)

    def stop(self, study: str) -> int:
        """Ask this dashboard's live workers on ``study`` to stop after their current trial; return how many."""
        alive = [proc for proc, s, *_ in self.procs if s == study and proc.poll() is None]
        for proc in alive:
            proc.terminate()
        return len(alive)

    def table(self, study: str) -> pd.DataFrame:
        """One row per worker started from this dashboard on ``study``."""
        rows = [{"pid": p.pid, "device": d, "started": time.strftime("%H:%M:%S", time.localtime(t)),
                 "stops at (complete trials)": n,
                 "status": "running" if p.poll() is None else ("finished" if p.returncode == 0
                                                                else f"ended (exit {p.returncode})")}
                for p, s, d, t, n in self.procs if s == study]
        return pd.DataFrame(rows)


@st.cache_resource
def local_workers() -> LocalWorkers:
    """The registry of workers started from this server; they are stopped when the server exits."""
    import atexit
    import signal

    workers = LocalWorkers()

    def stop_all(*_: object) -> None:
        for proc, *_rest in workers.procs:
            if proc.poll() is None:
                proc.terminate()
        if workers.yield_file:
            Path(workers.yield_file).unlink(missing_ok=True)

    atexit.register(stop_all)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
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
