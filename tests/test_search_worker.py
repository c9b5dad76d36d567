"""Worker behaviour: the global budget (surplus trials pruned, enqueued trials always run), SIGTERM mid-trial,
the suite check, and the status / export commands (in-process: the tests with worker processes are in
test_search.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from demix_core.cli import main
from demix_core.errors import StudyError
from demix_core.mixing.mixture import Mixture
from demix_core.search.study import create_study, enqueue, load_study
from demix_core.search.worker import Worker
from demix_core.workspace.manifest import load_workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_budget_is_global_and_queue_goes_first(tiny_workspace: Path, capsys, tmp_path: Path) -> None:
    ws = load_workspace(tiny_workspace)
    create_study(ws, "b", sampler="random")
    with pytest.raises(StudyError, match="scores with suite 'quick', not 'paper'"):
        Worker(ws, "b", device="cpu", suite="paper")
    w = Worker(ws, "b", device="cpu", log=lambda s: None)
    assert w.run(3) == 3
    # A worker that lost the race for the last slot: its sampled trial is pruned unevaluated.
    w.study.optimize(w.objective, n_trials=1)
    # A queued mixture runs even though the budget is reached.
    enqueue(w.study, Mixture.from_weights(ws.component_names, [0.6, 0.2, 0.2]), source="manual")
    w.study.optimize(w.objective, n_trials=1)
    assert w.run(4) == 0  # nothing left: 4 complete, nothing waiting
    trials = load_study(ws, "b").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[3].user_attrs["source"] == "surplus" and "benchmarks" not in trials[3].user_attrs
    assert trials[4].user_attrs["source"] == "manual" and trials[4].user_attrs["mixture"]["alpha"] == pytest.approx(0.6)

    root = ["--workspace", str(tiny_workspace), "--study", "b"]
    assert main(["study", "status", *root, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"COMPLETE": 4, "PRUNED": 1} and status["objectives"] == ["general", "code", "math"]
    assert 1 <= len(status["pareto_front"]) <= 4
    assert main(["study", "status", *root]) == 0
    assert "Pareto front" in capsys.readouterr().out
    for fmt in ("csv", "json"):
        out = tmp_path / f"trials.{fmt}"
        assert main(["study", "export", *root, "--format", fmt, "--out", str(out)]) == 0
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert len(rows) == 5 and {"w:alpha", "d:math", "b:gamma/bpb", "merge_s", "eval_s"} <= set(rows[0])
    assert (tmp_path / "trials.csv").read_text().count("\n") == 6  # header + 5 trials


def test_sigterm_finishes_the_current_trial(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process (the handler is the same one a `demix worker` process installs); the signal lands mid-trial.
    ws = load_workspace(tiny_workspace)
    create_study(ws, "t", sampler="random")
    w = Worker(ws, "t", device="cpu", log=lambda s: None)
    monkeypatch.setenv("DEMIX_TRIAL_SLEEP", "1.0")
    seen: list[int] = []

    def kill_when_running() -> None:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            seen.extend(t.number for t in w.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    done = w.run(100)
    killer.join()
    assert seen and done == 1 and w.stopping
    trials = load_study(ws, "t").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE]  # the running trial finished; nothing started after
    assert signal.getsignal(signal.SIGTERM) != w._stop  # the previous handler is back


def test_journal_storage(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    url = f"journal:{tiny_workspace / 'journal.log'}"
    create_study(ws, "j", sampler="tpe", storage=url)
    assert Worker(ws, "j", storage=url, device="cpu", log=lambda s: None).run(3) == 3
    study = load_study(ws, "j", storage=url)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3
    assert study.user_attrs["sampler"] == "tpe" and study.metric_names == ["general", "code", "math"]
