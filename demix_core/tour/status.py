"""Where the tour stands, for the dashboard and ``demix tour --status``: read from the tour record and its job (no
model, no storage is opened, so a page can ask every second)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demix_core.tour import state
from demix_core.tour.stages import NAMES, STAGES, stage

WAITING, RUNNING, DONE, FAILED, STOPPED = "waiting", "running", "done", "failed", "stopped"


@dataclass
class StageStatus:
    """One stage, as it stands."""

    name: str
    title: str
    page: str
    status: str  # waiting, running, done, failed, stopped (its process is gone: the next run resumes it)
    seconds: float | None = None  # spent (done or failed), or so far (running)
    done: int | None = None
    total: int | None = None
    error: str = ""

    def fraction(self) -> float:
        """How far the stage is, 0 to 1 (a running stage without a count: 0)."""
        if self.status == DONE:
            return 1.0
        if self.done is not None and self.total:
            return min(1.0, self.done / self.total)
        return 0.0


@dataclass
class TourStatus:
    """The whole tour."""

    stages: list[StageStatus] = field(default_factory=list)
    job: Any = None  # the newest tour job (demix_core.background.jobs.Job), or None
    last_line: str = ""  # the job's last log line: the current step
    verdict: str = ""  # the loop's verdict, once the verdict stage ran
    sentence: str = ""  # its per-domain sentence against natural

    @property
    def started(self) -> bool:
        """Whether the tour ever started here."""
        return any(s.status != WAITING for s in self.stages)

    @property
    def running(self) -> bool:
        """Whether a tour process works now."""
        return self.job is not None and self.job.status == "running"

    @property
    def finished(self) -> bool:
        """Whether every planned stage is done."""
        return bool(self.stages) and all(s.status == DONE for s in self.stages)

    @property
    def current(self) -> StageStatus | None:
        """The stage running now (or stopped / failed: the one the next run starts with)."""
        return next((s for s in self.stages if s.status in (RUNNING, FAILED, STOPPED)), None)

    def fraction(self) -> float:
        """The whole tour's progress, each stage weighted by its expected time."""
        weights = {s.name: s.expected for s in STAGES}
        total = sum(weights[s.name] for s in self.stages)
        return sum(weights[s.name] * s.fraction() for s in self.stages) / total if total else 0.0

    def of(self, name: str) -> StageStatus | None:
        """The status of one stage (None when it is not planned)."""
        return next((s for s in self.stages if s.name == name), None)

    def seconds(self) -> float:
        """Seconds spent in the stages so far."""
        return sum(s.seconds or 0.0 for s in self.stages)


def tour_status(root: str | os.PathLike[str]) -> TourStatus:
    """The tour of a workspace folder as it stands (no stages when it never started)."""
    from demix_core.background.jobs import latest

    data = state.read_state(root)
    planned = [n for n in data.get("stages_planned") or [] if n in NAMES]
    job = latest(Path(root), state.JOB_KIND)
    alive = job is not None and job.status == "running"
    out = TourStatus(job=job)
    now = time.time()
    for name in planned:
        entry = data["stages"].get(name) or {}
        status = str(entry.get("status") or WAITING)
        if status == RUNNING and not alive:
            status = STOPPED
        seconds = entry.get("seconds")
        if status == RUNNING and entry.get("started"):
            seconds = float(entry.get("seconds_before", 0.0)) + now - float(entry["started"])
        s = stage(name)
        out.stages.append(StageStatus(name, s.title, s.page, status, seconds, entry.get("done"), entry.get("total"),
                                      str(entry.get("error") or "")))
    if job is not None:
        out.last_line = job.progress()[1]
    verdict = data["stages"].get("verdict") or {}
    out.verdict, out.sentence = str(verdict.get("verdict") or ""), str(verdict.get("sentence") or "")
    return out


def stage_lines(status: TourStatus) -> list[str]:
    """One line per stage, for ``demix tour --status`` and the dashboard."""
    lines = []
    for i, s in enumerate(status.stages, 1):
        count = f" {s.done:,}/{s.total:,}" if s.done is not None and s.total else ""
        took = f" ({duration(s.seconds)})" if s.seconds is not None else ""
        lines.append(f"[{i}/{len(status.stages)}] {s.name:<10} {s.status}{count}{took}: {s.title}"
                     + (f" - {s.error}" if s.error and s.status in (FAILED, STOPPED) else ""))
    if status.verdict:
        lines.append(f"verdict: {status.verdict}")
    return lines


def duration(seconds: float | None) -> str:
    """``4 min 07 s`` or ``12 s`` ('' for None)."""
    if seconds is None:
        return ""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"
