"""The one way DeMix Studio starts a process of its own, and how a background one yields to the Mixer.

``demix study run``'s workers, the dashboard's workers, the dashboard's background jobs and the jobs' runner all
start through :func:`launch`: ``python -m demix_core ...`` (:func:`python_command`; the interpreter running this
code, so the process imports the same DeMix Studio), with torch's threads set so that processes started together
share the machine's cores instead of each taking all of them (:func:`thread_env`), optionally in a new session (it
outlives a dashboard reload) and with its output appended to a log file.

Workers started from the dashboard run in the background (``background=True``): they pause while the Mixer is
measuring (the dashboard touches a yield file, :func:`new_yield_file`; a touch in the last ``YIELD_FRESH_S``
seconds holds the worker back), before their next trial and between the forward passes of the trial in flight,
and they run at nice ``BACKGROUND_NICE`` (:func:`enter_background`, called before torch starts its threads), so
the one batch in flight when the Mixer starts takes little CPU from it. The pause does what priority cannot (a
GPU, memory bandwidth, a second core's worth of threads). Not ``SCHED_IDLE`` or nice 19: on a machine with other
work those starve the worker entirely. A trial paused mid-way keeps its heartbeat and finishes later (its
``eval_s`` includes the pause); nothing is lost or counted twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

BACKGROUND_ENV = "DEMIX_WORKER_BACKGROUND"  # "1": lower this process's CPU priority at start
YIELD_ENV = "DEMIX_YIELD_FILE"  # a file the Mixer touches while it measures; the worker pauses between trials
BACKGROUND_NICE = 10  # the dashboard (nice 0) gets ~9/10 of a contended core; other work still leaves the worker some
YIELD_FRESH_S = 1.5  # a touch this recent means the Mixer is busy
YIELD_MAX_S = 60.0  # the longest a worker waits for a busy Mixer before running its next trial anyway


def python_command(*args: str, module: str = "demix_core") -> list[str]:
    """``python -m demix_core ARGS`` (or another module of ours) with the interpreter running this code."""
    return [sys.executable, "-m", module, *args]


def thread_env(count: int, threads: int | None = None) -> dict[str, str]:
    """This process's environment with torch's thread count set for one of ``count`` processes.

    Args:
        count: Processes that will share the cores.
        threads: Threads per process (default: the cores divided among the processes, at least 1).
    """
    per_worker = str(threads or max(1, (os.cpu_count() or 1) // max(1, count)))
    return {**os.environ, "OMP_NUM_THREADS": per_worker, "MKL_NUM_THREADS": per_worker}


def launch(command: Sequence[str], *, share: int = 0, threads: int | None = None, env: Mapping[str, str] | None = None,
           background: bool = False, cwd: str | os.PathLike[str] | None = None,
           log: str | os.PathLike[str] | None = None, quiet: bool = False,
           new_session: bool = False) -> subprocess.Popen[bytes]:
    """Start one process and return it (running; nobody waits for it here).

    Args:
        command: The command line, usually :func:`python_command`.
        share: How many processes share the cores (torch's threads: :func:`thread_env`); 0 with no ``threads``:
            the environment's settings as they are.
        threads: Torch threads for this process (default: the cores divided among ``share``).
        env: Variables set on top of this process's environment.
        background: Lower its CPU priority at start (the started command calls :func:`enter_background`).
        cwd: Folder it starts in (default: this process's).
        log: Append its output and its errors to this file (default: its output is dropped).
        quiet: Without ``log``: drop its errors too (default: they go where this process's go).
        new_session: Start it in a session of its own (a signal to this process's group does not reach it).
    """
    full = thread_env(share, threads) if share or threads is not None else dict(os.environ)
    full.update(env or {})
    if background:
        full[BACKGROUND_ENV] = "1"
    where = None if cwd is None else str(cwd)
    if log is not None:
        with open(log, "ab", buffering=0) as out:  # the child holds its own descriptor
            return subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=full, cwd=where,
                                    start_new_session=new_session)
    return subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None,
                            env=full, cwd=where, start_new_session=new_session)


def enter_background() -> bool:
    """In a process started with ``background=True``: lower this process's CPU priority to nice
    ``BACKGROUND_NICE``. Call it before torch starts threads: they inherit it. Returns whether it applied."""
    if os.environ.get(BACKGROUND_ENV) != "1":
        return False
    try:
        os.nice(max(0, BACKGROUND_NICE - os.nice(0)))
    except OSError:
        pass
    return True


def new_yield_file() -> str:
    """A new, empty yield file, marked not busy (the caller removes it when done); give it to the workers as
    ``env={YIELD_ENV: path}`` and :func:`touch` it while the Mixer measures."""
    handle, path = tempfile.mkstemp(prefix="demix-mixer-", suffix=".busy")
    os.close(handle)
    os.utime(path, (0, 0))  # not busy
    return path


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
