"""A worker: components resident on one device, trials evaluated in a loop until the study has enough.

ask -> merge in place -> score -> tell, through ``study.optimize`` so Optuna's heartbeats run: a
worker killed mid-trial leaves a RUNNING trial that another worker fails once its heartbeat is stale,
and the retry callback queues a copy that the next free worker evaluates. Enqueued trials go first.
SIGTERM and SIGINT finish the current trial, then stop.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from demix_core.engine import Engine
from demix_core.mixture import mixture_from_params, param_name
from demix_core.search.study import load_study, worker_id
from demix_core.workspace import Workspace

# Failure-injection hook for tests: seconds to sleep inside each trial (so a kill lands mid-trial).
SLEEP_ENV = "DEMIX_TRIAL_SLEEP"


class Worker:
    """Evaluates a study's trials on one device.

    Args:
        ws: The workspace.
        study_name: The study (created beforehand).
        storage: Storage URL (default: the workspace's).
        device: ``auto``, ``cpu``, ``cuda``...
        log: Where progress lines go.
    """

    def __init__(self, ws: Workspace, study_name: str, *, storage: str | None = None, device: str = "auto",
                 log: Callable[[str], None] = print) -> None:
        self.id = worker_id()
        self.study = load_study(ws, study_name, storage=storage, worker_seed=os.getpid() % 10_000)
        attrs = self.study.user_attrs
        self.domains = list(self.study.metric_names or attrs["domains"])
        self.method = attrs.get("method", "linear")
        tasks = attrs.get("tasks")
        self.engine = Engine(ws, suite=None if tasks else attrs.get("suite"), device=device,
                             tasks=tasks.split(",") if tasks else None)
        self.sampler_name = attrs.get("sampler", "tpe")
        self.log = log
        self.stopping = False
        self.done = 0

    def objective(self, trial: optuna.Trial) -> list[float]:
        """Merge the trial's mixture into the proxy and score it."""
        names = self.engine.names
        params = {param_name(n): trial.suggest_float(param_name(n), 0.0, 1.0) for n in names}
        mix = mixture_from_params(names, params)
        start = time.perf_counter()
        ev = self.engine.evaluate(mix, method=self.method)
        delay = float(os.environ.get(SLEEP_ENV, "0") or 0)
        if delay:
            time.sleep(delay)
        missing = [d for d in self.domains if d not in ev.scores.domains]
        if missing:
            raise RuntimeError(f"suite reported no score for domains {missing}")
        trial.set_user_attr("mixture", mix.as_dict())
        trial.set_user_attr("benchmarks", ev.scores.benchmarks)
        trial.set_user_attr("domains", ev.scores.domains)
        trial.set_user_attr("merge_s", ev.merge_seconds)
        trial.set_user_attr("eval_s", ev.scores.seconds)
        trial.set_user_attr("trial_s", time.perf_counter() - start)
        trial.set_user_attr("worker", self.id)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("device", str(self.engine.device))
        if "source" not in trial.user_attrs:
            trial.set_user_attr("source", self.sampler_name)
        return [ev.scores.domains[d] for d in self.domains]

    def _after(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            self.done += 1
            vals = " ".join(f"{d}={v:.4f}" for d, v in zip(self.domains, trial.values or []))
            mix = " ".join(f"{k}={v:.2f}" for k, v in trial.user_attrs.get("mixture", {}).items() if v > 0.005)
            self.log(f"[{self.id}] trial {trial.number}: {mix} -> {vals}")
        if self.stopping:
            study.stop()

    def run(self, n_trials: int | None = None, *, timeout: float | None = None) -> int:
        """Work until the study has ``n_trials`` complete trials (None: until stopped), or ``timeout``.

        Returns:
            Trials this worker completed.
        """
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.stopping and (deadline is None or time.monotonic() < deadline):
                optuna.storages.fail_stale_trials(self.study)
                if n_trials is not None:
                    trials = self.study.get_trials(deepcopy=False)
                    complete = sum(t.state == TrialState.COMPLETE for t in trials)
                    running = sum(t.state == TrialState.RUNNING for t in trials)
                    waiting = sum(t.state == TrialState.WAITING for t in trials)
                    if complete >= n_trials and waiting == 0:
                        break
                    if waiting == 0 and complete + running >= n_trials:
                        time.sleep(0.5)  # others are finishing the last trials; a dead one goes stale
                        continue
                self.study.optimize(self.objective, n_trials=1, callbacks=[self._after], catch=(RuntimeError,),
                                    gc_after_trial=False)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        return self.done

    def _stop(self, signum: int, frame: Any) -> None:
        if self.stopping:  # a second signal: stop now
            raise KeyboardInterrupt
        self.stopping = True
        self.log(f"[{self.id}] stopping after the current trial (signal {signum})")
