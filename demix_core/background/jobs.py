"""Background jobs: one ``demix`` command in its own process, its output in a log file and its state in a JSON
file under ``<workspace>/jobs/``, so a page reload (or a restarted dashboard) finds it and its progress again.

The dashboard starts validation (``demix validate``) and reference training (``demix workspace train-reference``,
``train-references``, ``recommend --train``) here, through the one launcher that starts workers
(:func:`demix_core.background.launch.launch`): ``python -m demix_core ...`` with the interpreter running this code
and torch's threads set. A small runner (``python -m demix_core.background.jobs STATE``, in a session of its own)
runs the command, sends its output to ``<id>.log`` and writes the exit status into ``<id>.json`` when it ends, so
nobody has to wait for the process to know how it ended. Progress is read from the log: the last ``[i/n]`` a
command printed (these commands print such lines; a reference set one per model, its trainings' own lines without
brackets).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demix_core.background.launch import launch, python_command
from demix_core.errors import DemixError
from demix_core.io.atomic import atomic_write_text

JOBS_FOLDER = "jobs"
RUNNER = "demix_core.background.jobs"  # this module, run as ``python -m`` with a job's state file
PROGRESS = re.compile(r"\[(\d+)/(\d+)\]")


@dataclass
class Job:
    """A background job's recorded state."""

    id: str
    kind: str
    title: str
    command: list[str]
    started: float
    pid: int = 0
    returncode: int | None = None
    ended: float | None = None
    state_file: Path = Path()

    @property
    def log_file(self) -> Path:
        """Where the command's output goes."""
        return self.state_file.with_suffix(".log")

    @property
    def status(self) -> str:
        """``running``, ``done``, ``failed`` (non-zero exit) or ``lost`` (the process is gone without a status)."""
        if self.returncode is not None:
            return "done" if self.returncode == 0 else "failed"
        return "running" if _alive(self.pid) else "lost"

    def progress(self) -> tuple[float | None, str]:
        """(fraction done from the last ``[i/n]`` in the log, or None; the last non-empty log line)."""
        lines = [ln.strip() for ln in tail(self.log_file).replace("\r", "\n").splitlines() if ln.strip()]
        fraction = None
        for line in reversed(lines):
            m = PROGRESS.search(line)
            if m and int(m.group(2)) > 0:
                fraction = min(1.0, int(m.group(1)) / int(m.group(2)))
                break
        if self.status == "done":
            fraction = 1.0
        return fraction, lines[-1] if lines else ""

    def to_json(self) -> dict[str, Any]:
        """Plain data (the state file)."""
        return {"id": self.id, "kind": self.kind, "title": self.title, "command": self.command,
                "started": self.started, "pid": self.pid, "returncode": self.returncode, "ended": self.ended}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def tail(path: Path, size: int = 16_384) -> str:
    """The last ``size`` bytes of a text file ('' when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _read(path: Path) -> Job | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Job(id=str(data["id"]), kind=str(data["kind"]), title=str(data.get("title", "")),
                   command=list(data["command"]), started=float(data["started"]), pid=int(data.get("pid") or 0),
                   returncode=data.get("returncode"), ended=data.get("ended"), state_file=path)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(job: Job) -> None:
    atomic_write_text(job.state_file, json.dumps(job.to_json(), indent=1) + "\n")


def start_job(workspace: str | os.PathLike[str], kind: str, args: list[str], *, title: str = "",
              threads: int | None = None, cwd: str | os.PathLike[str] | None = None) -> Job:
    """Start ``demix ARGS`` in the background for a workspace; return its job (state written first).

    Args:
        workspace: The workspace folder (its ``jobs/`` holds the state and the log).
        kind: What it is (``validate-quick``, ``train-reference``...), to find it again.
        args: The ``demix`` arguments.
        title: A line for people.
        threads: Torch threads (default: half the cores, at least 1: the dashboard keeps serving).
        cwd: Folder the job starts in (default: this process's).

    Raises:
        DemixError: A job of this kind is already running for the workspace.
    """
    running = [j for j in jobs(workspace, kind) if j.status == "running"]
    if running:
        raise DemixError(f"a {kind} job is already running ({running[0].title or running[0].id}, pid "
                         f"{running[0].pid}); wait for it or stop it first")
    folder = Path(workspace) / JOBS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    job_id = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"  # two in one second stay apart
    job = Job(job_id, kind, title, python_command(*args), time.time(), state_file=folder / f"{job_id}.json")
    _write(job)
    proc = launch(python_command(str(job.state_file), module=RUNNER), share=2, threads=threads, cwd=cwd, quiet=True,
                  new_session=True)  # half the cores by default
    job.pid = proc.pid
    _write_pid(job.state_file, proc.pid)
    return job


def start_or_join(workspace: str | os.PathLike[str], kind: str, args: list[str], *, title: str = "",
                  threads: int | None = None, cwd: str | os.PathLike[str] | None = None) -> tuple[Job, bool]:
    """The running job of ``kind`` for the workspace, else a new one running ``demix ARGS`` (see :func:`start_job`).

    Two callers at once (two ``make run``) get the same job: the check and the start hold a lock file
    (``jobs/<kind>.lock``), so the second finds the first's job running.

    Returns:
        (the job, whether this call started it).
    """
    import fcntl

    folder = Path(workspace) / JOBS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = [j for j in jobs(workspace, kind) if j.status == "running"]
        if running:
            return running[0], False
        return start_job(workspace, kind, args, title=title, threads=threads, cwd=cwd), True


def _write_pid(state_file: Path, pid: int) -> None:
    """Record the runner's pid, unless the runner already wrote its end (a command that failed at once)."""
    job = _read(state_file)
    if job is not None and job.returncode is None:
        job.pid = pid
        _write(job)


def jobs(workspace: str | os.PathLike[str], kind: str | None = None) -> list[Job]:
    """A workspace's jobs (of one kind, when given), newest first."""
    folder = Path(workspace) / JOBS_FOLDER
    found = [j for j in (_read(p) for p in folder.glob("*.json")) if j is not None] if folder.is_dir() else []
    return sorted((j for j in found if kind is None or j.kind == kind), key=lambda j: j.started, reverse=True)


def latest(workspace: str | os.PathLike[str], kind: str) -> Job | None:
    """The newest job of ``kind``, or None."""
    found = jobs(workspace, kind)
    return found[0] if found else None


def stop(job: Job) -> bool:
    """Ask a running job to stop (SIGTERM to its runner, which passes it on); whether it was running."""
    if job.status != "running":
        return False
    try:
        os.kill(job.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _run(state_file: Path) -> int:
    """The runner: run the job's command with its output in the log, then record how it ended."""
    job = _read(state_file)
    if job is None:
        return 2
    started: list[Any] = []  # the command's process, once it runs
    asked: list[int] = []  # a stop asked before it runs (the job shows as running from the pid below)

    def forward(signum: int, frame: Any) -> None:
        if started:
            started[0].send_signal(signum)
        else:
            asked.append(signum)

    signal.signal(signal.SIGTERM, forward)  # before the pid is recorded: no stop() finds the runner unprepared
    job.pid = os.getpid()
    _write(job)
    with open(job.log_file, "ab", buffering=0) as log:
        log.write(f"$ {' '.join(job.command[2:])}\n".encode())
    proc = launch(job.command, env={"PYTHONUNBUFFERED": "1"}, log=job.log_file)
    started.append(proc)
    for signum in asked:
        proc.send_signal(signum)
    code = proc.wait()
    done = _read(state_file) or job
    done.pid, done.returncode, done.ended = os.getpid(), code, time.time()
    _write(done)
    return code


if __name__ == "__main__":
    raise SystemExit(_run(Path(sys.argv[1])))
