"""The one process launcher (workers, background jobs and their runner): the interpreter, torch's threads, extra
variables, the background flag, a new session and an appended log."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from demix_core.background.launch import launch, mixer_busy, new_yield_file, python_command, touch
from demix_core.search.launch import start_workers

SHOW = ("import os, sys; print(os.environ.get('OMP_NUM_THREADS'), os.environ.get('MKL_NUM_THREADS'), "
        "os.environ.get('DEMIX_WORKER_BACKGROUND'), os.environ.get('X_DEMIX'), os.getsid(0) == int(sys.argv[1])); "
        "print('oops', file=sys.stderr)")


def _run(tmp_path: Path, **kwargs) -> list[str]:  # noqa: ANN003 - launch's options
    log = tmp_path / "out.log"
    log.write_text("before\n")
    proc = launch([sys.executable, "-c", SHOW, str(os.getsid(0))], log=log, **kwargs)
    assert proc.wait(timeout=60) == 0
    return log.read_text().splitlines()


def test_python_command_is_this_interpreter() -> None:
    assert python_command("worker", "--x") == [sys.executable, "-m", "demix_core", "worker", "--x"]
    assert python_command("s.json", module="demix_core.background.jobs")[1:] == ["-m", "demix_core.background.jobs",
                                                                                  "s.json"]


def test_launch_sets_threads_variables_and_appends_its_output(tmp_path: Path) -> None:
    lines = _run(tmp_path, share=2, threads=3, env={"X_DEMIX": "1"}, background=True)
    assert lines[0] == "before" and lines[1] == "3 3 1 1 True" and "oops" in lines  # errors in the log too
    lines = _run(tmp_path, new_session=True)
    inherited = os.environ.get("OMP_NUM_THREADS")
    assert lines[1] == f"{inherited} {os.environ.get('MKL_NUM_THREADS')} None None False"  # nothing set; own session
    assert _run(tmp_path, share=10_000)[1].startswith("1 1 ")  # at least one thread each


def test_a_new_yield_file_is_not_busy_until_touched() -> None:
    path = new_yield_file()
    try:
        assert Path(path).exists() and not mixer_busy(path)
        touch(path)
        assert mixer_busy(path)
    finally:
        Path(path).unlink()


def test_workers_start_through_the_launcher(tmp_path: Path) -> None:
    [proc] = start_workers(tmp_path, "s1", n_trials=1, device="cpu", quiet=True, background=True)
    assert proc.args[:4] == [sys.executable, "-m", "demix_core", "worker"]
    assert proc.wait(timeout=120) != 0  # no workspace there: the worker fails at once, quietly
