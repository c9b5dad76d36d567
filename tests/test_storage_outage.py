"""Workers ride out a storage outage: a TCP proxy in front of PostgreSQL is cut for ~5 s while 3 workers run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from tcp_proxy import CuttableProxy

from demix_core.search.study import create_study, load_study
from demix_core.workspace.manifest import load_workspace

PG = ("127.0.0.1", 5432)
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _require_postgres() -> None:
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=3).close()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required under CI but is not reachable ({exc})")
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432 (database test); start it to run this test")


def _complete(study: optuna.Study) -> int:
    return sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_ride_out_a_storage_outage(tiny_workspace: Path, tmp_path: Path) -> None:
    _require_postgres()
    n = 24
    proxy = CuttableProxy(PG, lifetime=400)
    ws = load_workspace(tiny_workspace)
    name = f"outage-{uuid.uuid4().hex[:8]}"
    create_study(ws, name, sampler="random", storage=PG_URL)
    study = load_study(ws, name, storage=PG_URL)  # the test watches the database directly, not through the proxy
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "DEMIX_TRIAL_SLEEP": "1.0"}
    cmd = [sys.executable, "-m", "demix_core", "worker", "--workspace", str(tiny_workspace), "--study", name,
           "--n-trials", str(n), "--device", "cpu", "--storage", proxy.url]
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    try:
        deadline = time.monotonic() + 180
        while _complete(study) < 4 and time.monotonic() < deadline:  # all three busy, trials in flight
            time.sleep(0.1)
        assert _complete(study) >= 4, "the workers did not get going"
        proxy.cut()
        cut_at = _complete(study)
        time.sleep(5.0)
        assert all(p.poll() is None for p in procs), "a worker died during the outage"
        proxy.restore()
        codes = [p.wait(timeout=300) for p in procs]
        text = "\n".join(log.read_text() for log in logs)
        assert codes == [0, 0, 0], text
        assert cut_at < n, "the outage came too late to matter"
        assert "Traceback" not in text and "UnboundLocalError" not in text, text
        assert "storage unreachable" in text and "storage is back" in text, text

        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], "stuck trials"
        assert len(complete) == n
        assert len({t.number for t in complete}) == n
        interrupted = {int(m) for m in re.findall(r"storage lost during a trial \(trial (\d+)", text)}
        by_number = {t.number: t for t in trials}
        assert interrupted, "no trial was cut short: the outage tested nothing"
        for number in interrupted:  # failed by the heartbeat mechanism, then re-run once (or its slot refilled)
            assert by_number[number].state == TrialState.FAIL, number
            copies = [t for t in trials if t.system_attrs.get("failed_trial") == number]
            assert len(copies) == 1, (number, [t.number for t in copies])
            retry = copies[0]
            # A sampled trial's retry runs unless a worker already filled the freed slot with a new sample.
            assert retry.state == TrialState.COMPLETE or retry.user_attrs.get("source") == "surplus", retry
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        proxy.close()
        optuna.delete_study(study_name=name, storage=PG_URL)
