"""Studies, workers (SQLite and the real PostgreSQL server), recommendations and one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from demix_core.errors import StudyError
from demix_core.mixing.mixture import Mixture
from demix_core.search.study import create_study, enqueue, load_study
from demix_core.search.trials import trials_frame
from demix_core.workspace.manifest import load_workspace

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def worker_cmd(ws: Path, study: str, n: int, storage: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "demix_core", "worker", "--workspace", str(ws), "--study", study,
           "--n-trials", str(n), "--device", "cpu"]
    return cmd + (["--storage", storage] if storage else [])


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", **extra}


def check_clean(study: optuna.Study, n: int) -> list[optuna.trial.FrozenTrial]:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], "stuck trials"
    assert len(complete) == n, f"{len(complete)} complete, wanted {n}"
    numbers = [t.number for t in complete]
    assert len(set(numbers)) == len(numbers)
    for t in complete:
        assert set(t.user_attrs["mixture"]) == {"alpha", "beta", "gamma"}
        assert abs(sum(t.user_attrs["mixture"].values()) - 1) < 1e-9
        assert t.user_attrs["worker"] and t.user_attrs["device"] == "cpu"
        assert {"alpha/bpb", "beta/bpb", "gamma/bpb"} <= set(t.user_attrs["benchmarks"])
    return complete


def test_two_sqlite_workers_share_a_study(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    create_study(ws, "s", sampler="tpe")
    enqueue(load_study(ws, "s"), Mixture.from_weights(ws.component_names, [0.2, 0.3, 0.5]), source="manual")
    procs = [subprocess.Popen(worker_cmd(tiny_workspace, "s", 12), env=env(), stdout=subprocess.DEVNULL)
             for _ in range(2)]
    assert all(p.wait(timeout=240) == 0 for p in procs)
    study = load_study(ws, "s")
    complete = check_clean(study, 12)
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both workers took trials
    manual = [t for t in complete if t.user_attrs["source"] == "manual"]
    assert len(manual) == 1 and manual[0].user_attrs["mixture"]["gamma"] == pytest.approx(0.5)
    assert study.metric_names == ["general", "code", "math"]
    frame = trials_frame(study)
    assert {"w:alpha", "d:general", "b:alpha/bpb", "merge_s"} <= set(frame.columns)
    assert (frame["state"] == "COMPLETE").sum() == 12
    # Two workers asking at the same instant for the 12th trial: the later one is pruned unevaluated.
    extra = frame[frame["state"] != "COMPLETE"]
    assert (extra["state"] == "PRUNED").all() and (extra["source"] == "surplus").all()


def _pg_available() -> bool:
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.mark.postgres
def test_postgres_workers_survive_a_killed_worker(tiny_workspace: Path) -> None:
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required under CI but is not reachable")
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432 (database test); start it to run this test")
    ws = load_workspace(tiny_workspace)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    create_study(ws, name, sampler="random", storage=PG_URL)
    try:
        slow = env(DEMIX_TRIAL_SLEEP="0.6")
        procs = [subprocess.Popen(worker_cmd(tiny_workspace, name, 30, PG_URL), env=slow, stdout=subprocess.DEVNULL)
                 for _ in range(3)]
        study = load_study(ws, name, storage=PG_URL)
        victim = procs[0]
        deadline = time.monotonic() + 120
        killed_trial = None
        while time.monotonic() < deadline and killed_trial is None:  # kill while it holds a running trial
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.user_attrs.get("worker", "").endswith(f":{victim.pid}"):  # recorded when the trial starts
                    killed_trial = t.number
            if killed_trial is None:
                time.sleep(0.05)
        assert killed_trial is not None, "the victim never held a running trial"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert all(p.wait(timeout=240) == 0 for p in procs[1:])
        complete = check_clean(study, 30)
        failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
        assert killed_trial in [t.number for t in failed]
        retried = [t for t in complete if t.system_attrs.get("failed_trial") == killed_trial]
        assert len(retried) == 1  # re-run once, by another worker
        assert retried[0].user_attrs["worker"] != f"{os.uname().nodename}:{victim.pid}"
    finally:
        optuna.delete_study(study_name=name, storage=PG_URL)


def test_recommend_and_enqueue(tiny_workspace: Path, capsys) -> None:
    from demix_core.cli import main

    ws = load_workspace(tiny_workspace)
    create_study(ws, "r", sampler="random")
    from demix_core.search.worker import Worker

    assert Worker(ws, "r", device="cpu", log=lambda s: None).run(10) == 10  # in-process: no start-up cost
    code = main(["recommend", "--workspace", str(tiny_workspace), "--study", "r", "--samples", "5000", "--top-k", "16",
                 "--enqueue", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    import json

    rec = json.loads(out)
    assert abs(sum(rec["mixture"].values()) - 1) < 1e-9 and rec["regressor"] == "ridge" and rec["trials"] == 10
    assert set(rec["predicted"]) >= {"general", "code", "math", "alpha/bpb"}
    assert -1 <= rec["spearman"]["general"] <= 1
    waiting = load_study(ws, "r").get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs["source"] == "recommendation"


def test_demix_sampler_rounds(tiny_workspace: Path) -> None:
    from demix_core.search.rounds import scaled_rounds
    from demix_core.search.worker import Worker

    assert scaled_rounds(None) == (64, 32, 16)
    assert sum(scaled_rounds(40)) == 40 and scaled_rounds(40)[0] > scaled_rounds(40)[1] >= 2
    ws = load_workspace(tiny_workspace)
    create_study(ws, "d", sampler="demix", n_trials=14)
    Worker(ws, "d", device="cpu", log=lambda s: None).run(14)
    study = load_study(ws, "d")
    complete = check_clean(study, 14)
    weights = [t.user_attrs["mixture"] for t in complete]
    first_round = weights[: scaled_rounds(14)[0]]
    # Round 1 follows the grid-rounded prior: multiples of 0.05 and at most the 0.7 cap.
    for w in first_round:
        for v in w.values():
            assert abs(v / 0.05 - round(v / 0.05)) < 1e-6 and v <= 0.7 + 1e-9


def test_errors_are_one_line(tiny_workspace: Path, capsys) -> None:
    from demix_core.cli import main
    from demix_core.search.predictor import recommend

    ws = load_workspace(tiny_workspace)
    create_study(ws, "e")
    code = main(["study", "status", "--workspace", str(tiny_workspace), "--study", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown study 'nope'" in err and "existing: e" in err
    code = main(["study", "status", "--workspace", str(tiny_workspace), "--study", "e", "--storage",
                 "postgresql://postgres@127.0.0.1:1/test"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot open storage" in err and err.count("\n") == 1
    code = main(["study", "enqueue", "--workspace", str(tiny_workspace), "--study", "e", "--mixture",
                 "alpha=0.5,zeta=0.5"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown component 'zeta'" in err
    code = main(["recommend", "--workspace", str(tiny_workspace), "--study", "e"])
    err = capsys.readouterr().err
    assert code == 2 and "too few to fit a predictor" in err
    missing = tiny_workspace / "elsewhere" / "studies.db"
    code = main(["worker", "--workspace", str(tiny_workspace), "--study", "s", "--storage", f"sqlite:///{missing}",
                 "--n-trials", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "no storage at" in err and "demix study create" in err and err.count("\n") == 1
    assert not missing.parent.exists()  # nothing written for a study that does not exist
    with pytest.raises(StudyError, match="need at least 8"):
        import numpy as np

        recommend(np.ones((3, 3)) / 3, {"general": np.ones(3)}, ["a", "b", "c"], ["general"])


def test_trial_table_follows_the_storage_incrementally(tiny_workspace: Path) -> None:
    from demix_core.search.trials import TrialTable

    ws = load_workspace(tiny_workspace)
    create_study(ws, "t", sampler="random")
    writer = load_study(ws, "t")
    table = TrialTable(load_study(ws, "t"))  # a separate reader, as the dashboard holds
    assert table.frame().empty
    enqueue(writer, Mixture.from_weights(ws.component_names, [0.2, 0.3, 0.5]), source="manual")
    first = table.frame()
    assert list(first["state"]) == ["WAITING"] and first["w:gamma"].iloc[0] == pytest.approx(0.5)
    trial = writer.ask()  # takes the queued mixture
    writer.tell(trial, [-1.0, -2.0, -3.0])
    second = table.frame()
    assert list(second["state"]) == ["COMPLETE"]
    assert list(second[["d:general", "d:code", "d:math"]].iloc[0]) == [-1.0, -2.0, -3.0]
    assert table.frame() is second  # nothing changed: the same frame, no rebuild
    for i in range(3):
        t = writer.ask()
        writer.tell(t, [float(i), 0.0, 0.0])
    third = table.frame()
    assert list(third["number"]) == [0, 1, 2, 3]
    expected = trials_frame(load_study(ws, "t"))
    assert third.drop(columns=["datetime_complete"]).equals(expected.drop(columns=["datetime_complete"]))
