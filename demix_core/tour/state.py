"""The tour's record, ``<workspace>/tour.json``: each stage's status and times (written atomically).

Plain data, read by the dashboard on every refresh::

    {"version": 1, "until": "verdict", "stages": {"components": {"status": "done", "started": 1.7e9,
     "ended": 1.7e9, "seconds": 412.3}, "references": {"status": "running", "started": ...}}}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from demix_core.io.atomic import atomic_write_text

STATE_FILE = "tour.json"
JOB_KIND = "tour"  # the background job that runs the tour
VERSION = 1


class Stopped(KeyboardInterrupt):
    """A stop was asked (SIGTERM to the tour): the stage stays recorded as running, so its status reads stopped once
    the process is gone, and the next run resumes it."""


def state_path(root: str | os.PathLike[str]) -> Path:
    """Where a workspace's tour record lies."""
    return Path(root) / STATE_FILE


def read_state(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The tour record (an empty one when there is none or it cannot be read)."""
    try:
        data = json.loads(state_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        return {"version": VERSION, "stages": {}}
    return data


def stage_record(root: str | os.PathLike[str], stage: str) -> dict[str, Any]:
    """One stage's record ({} when it has not started)."""
    entry = read_state(root)["stages"].get(stage)
    return entry if isinstance(entry, dict) else {}


def mark(root: str | os.PathLike[str], stage: str, status: str, **extra: Any) -> dict[str, Any]:
    """Record a stage's new status (``running``, ``done``, ``failed``, ``skipped``) with the time; return the record.

    ``running`` sets the start (kept when the stage was running already: a resumed stage counts its first start
    and its ``resumed`` count); ``done`` and ``failed`` set the end and the seconds spent in this run of it.
    """
    data = read_state(root)
    now = time.time()
    entry = dict(data["stages"].get(stage) or {})
    if status == "running":
        if entry.get("status") in ("running", "failed"):
            entry["resumed"] = int(entry.get("resumed", 0)) + 1
        entry.pop("ended", None)
        entry["started"] = now
    else:
        entry["ended"] = now
        entry["seconds"] = float(entry.get("seconds_before", 0.0)) + now - float(entry.get("started", now))
    if status == "running" and "seconds" in entry:  # time spent in earlier, interrupted runs of this stage
        entry["seconds_before"] = float(entry.pop("seconds"))
    entry["status"] = status
    entry.update(extra)
    data["stages"][stage] = entry
    data["version"] = VERSION
    atomic_write_text(state_path(root), json.dumps(data, indent=1) + "\n")
    return entry


def set_field(root: str | os.PathLike[str], **fields: Any) -> None:
    """Record tour-wide fields (``until``, ``started``...)."""
    data = read_state(root)
    data.update(fields)
    atomic_write_text(state_path(root), json.dumps(data, indent=1) + "\n")


def update_stage(root: str | os.PathLike[str], stage: str, **fields: Any) -> None:
    """Add fields to a stage's record (its progress count: ``done``, ``total``) without changing its status."""
    data = read_state(root)
    entry = dict(data["stages"].get(stage) or {})
    entry.update(fields)
    data["stages"][stage] = entry
    atomic_write_text(state_path(root), json.dumps(data, indent=1) + "\n")
