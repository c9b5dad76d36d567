"""The one way to start worker processes: ``demix study run`` and the dashboard both come here.

Each worker is ``python -m demix_core worker ...`` in its own process (the interpreter running this
code, so a worker imports the same DeMix Studio), with torch's threads set so that the workers share
the machine's cores instead of each taking all of them.

Workers started from the dashboard run in the background (``background=True``): they pause while the
Mixer is measuring (the dashboard touches ``yield_file``; a touch in the last ``YIELD_FRESH_S`` seconds
holds the worker back), before their next trial and between the forward passes of the trial in flight,
and they run at nice ``BACKGROUND_NICE`` (set before torch starts its threads), so the one batch in flight
when the Mixer starts takes little CPU from it. The pause does what priority cannot (a GPU, memory
bandwidth, a second core's worth of threads). Not ``SCHED_IDLE`` or nice 19: on a machine with other work
those starve the worker entirely. A trial paused mid-way keeps its heartbeat and finishes later (its
``eval_s`` includes the pause); nothing is lost or counted twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from demix_core.io.names import check_study_name

BACKGROUND_ENV = "DEMIX_WORKER_BACKGROUND"  # "1": lower this worker's CPU priority at start
YIELD_ENV = "DEMIX_YIELD_FILE"  # a file the Mixer touches while it measures; the worker pauses between trials
BACKGROUND_NICE = 10  # the dashboard (nice 0) gets ~9/10 of a contended core; other work still leaves the worker some
YIELD_FRESH_S = 1.5  # a touch this recent means the Mixer is busy
YIELD_MAX_S = 60.0  # the longest a worker waits for a busy Mixer before running its next trial anyway


def worker_command(workspace: str | os.PathLike[str], study: str, *, n_trials: int, device: str = "auto",
                   storage: str | None = None) -> list[str]:
    """The command line of one worker that stops once ``study`` has ``n_trials`` complete trials.

    Raises:
        StudyNameError: ``study`` is not a valid study name.
    """
    cmd = [sys.executable, "-m", "demix_core", "worker", "--workspace", str(workspace), "--study",
           check_study_name(study), "--n-trials", str(int(n_trials)), "--device", device]
    return cmd + ["--storage", storage] if storage else cmd


def thread_env(count: int, threads: int | None = None) -> dict[str, str]:
    """This process's environment with torch's thread count set for one of ``count`` workers.

    Args:
        count: Workers that will share the cores.
        threads: Threads per worker (default: the cores divided among the workers, at least 1).
    """
    per_worker = str(threads or max(1, (os.cpu_count() or 1) // max(1, count)))
    return {**os.environ, "OMP_NUM_THREADS": per_worker, "MKL_NUM_THREADS": per_worker}


def start_workers(workspace: str | os.PathLike[str], study: str, *, n_trials: int, count: int = 1,
                  device: str = "auto", storage: str | None = None, threads: int | None = None,
                  cwd: str | os.PathLike[str] | None = None, quiet: bool = False, background: bool = False,
                  yield_file: str | os.PathLike[str] | None = None) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` worker processes on ``study`` and return them (running; nobody waits for them here).

    Args:
        workspace: The workspace folder.
        study: The study, created beforehand (workers do not create studies: see FACTS on the SQLite race).
        n_trials: Complete trials the study should reach; each worker stops there.
        count: How many workers.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        storage: Storage URL (default: the workspace's).
        threads: Torch threads per worker (default: the cores divided among the workers).
        cwd: Folder the workers start in (default: this process's).
        quiet: Drop the workers' error output too (their progress output is always dropped).
        background: Run at the lowest CPU priority (see the module docstring).
        yield_file: Pause between trials while this file was touched in the last ``YIELD_FRESH_S`` seconds.

    Returns:
        The started processes.

    Raises:
        StudyNameError: ``study`` is not a valid study name.
    """
    cmd = worker_command(Path(workspace), study, n_trials=n_trials, device=device, storage=storage)
    env = thread_env(count, threads)
    if background:
        env[BACKGROUND_ENV] = "1"
    if yield_file is not None:
        env[YIELD_ENV] = str(yield_file)
    stderr = subprocess.DEVNULL if quiet else None
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                             cwd=None if cwd is None else str(cwd)) for _ in range(count)]


def enter_background() -> bool:
    """In a worker started with ``background=True``: lower this process's CPU priority to nice
    ``BACKGROUND_NICE``. Call it before torch starts threads: they inherit it. Returns whether it applied."""
    if os.environ.get(BACKGROUND_ENV) != "1":
        return False
    try:
        os.nice(max(0, BACKGROUND_NICE - os.nice(0)))
    except OSError:
        pass
    return True


def mixer_busy(path: str | os.PathLike[str] | None = None, *, now: float | None = None) -> bool:
    """Whether the Mixer touched the yield file (default: ``$DEMIX_YIELD_FILE``) in the last ``YIELD_FRESH_S``."""
    target = path if path is not None else os.environ.get(YIELD_ENV)
    if not target:
        return False
    try:
        touched = os.stat(target).st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - touched < YIELD_FRESH_S


def wait_while_mixer_busy(*, stop: object = None, poll: float = 0.05, limit: float = YIELD_MAX_S) -> float:
    """Sleep while the Mixer is measuring (at most ``limit`` seconds); return the seconds waited.

    Args:
        stop: Something with a true ``stopping`` attribute ends the wait early (a worker being stopped).
        poll: Seconds between checks.
        limit: The longest wait.
    """
    start = time.monotonic()
    while mixer_busy() and time.monotonic() - start < limit and not getattr(stop, "stopping", False):
        time.sleep(poll)
    return time.monotonic() - start


def touch(path: str | os.PathLike[str]) -> None:
    """Mark the Mixer busy now (the yield file's modification time); nothing happens if it does not exist."""
    try:
        os.utime(path)
    except OSError:
        pass
