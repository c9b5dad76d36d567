"""Worker processes: ``demix study run`` and the dashboard both start them here, through the one launcher
(:func:`demix_core.background.launch.launch`).

Each worker is ``python -m demix_core worker ...`` in its own process, with torch's threads set so that the
workers share the machine's cores. Workers started from the dashboard run in the background and yield to the
Mixer (see :mod:`demix_core.background.launch`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from demix_core.background.launch import YIELD_ENV, launch, python_command
from demix_core.io.names import check_study_name


def worker_command(workspace: str | os.PathLike[str], study: str, *, n_trials: int, device: str = "auto",
                   storage: str | None = None) -> list[str]:
    """The command line of one worker that stops once ``study`` has ``n_trials`` complete trials.

    Raises:
        StudyNameError: ``study`` is not a valid study name.
    """
    cmd = python_command("worker", "--workspace", str(workspace), "--study", check_study_name(study),
                         "--n-trials", str(int(n_trials)), "--device", device)
    return cmd + ["--storage", storage] if storage else cmd


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
        background: Run at a lower CPU priority (see :mod:`demix_core.background.launch`).
        yield_file: Pause between trials while this file was touched in the last ``YIELD_FRESH_S`` seconds.

    Returns:
        The started processes.

    Raises:
        StudyNameError: ``study`` is not a valid study name.
    """
    cmd = worker_command(Path(workspace), study, n_trials=n_trials, device=device, storage=storage)
    env = {YIELD_ENV: str(yield_file)} if yield_file is not None else {}
    return [launch(cmd, share=count, threads=threads, env=env, background=background, cwd=cwd, quiet=quiet)
            for _ in range(count)]
