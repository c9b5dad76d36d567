"""The one way to start worker processes: ``demix study run`` and the dashboard both come here.

Each worker is ``python -m demix_core worker ...`` in its own process (the interpreter running this
code, so a worker imports the same DeMix Studio), with torch's threads set so that the workers share
the machine's cores instead of each taking all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from demix_core.names import check_study_name


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
                  cwd: str | os.PathLike[str] | None = None, quiet: bool = False) -> list[subprocess.Popen[bytes]]:
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

    Returns:
        The started processes.

    Raises:
        StudyNameError: ``study`` is not a valid study name.
    """
    cmd = worker_command(Path(workspace), study, n_trials=n_trials, device=device, storage=storage)
    env = thread_env(count, threads)
    stderr = subprocess.DEVNULL if quiet else None
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                             cwd=None if cwd is None else str(cwd)) for _ in range(count)]
