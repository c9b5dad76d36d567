"""A worker: components resident on one device, trials evaluated in a loop until the study has enough.

ask -> merge in place -> score -> tell (in a study of the ``ensemble`` proxy kind: ask -> score from the
output ensemble's cached component log-probs -> tell, milliseconds per trial once the cache exists),
through ``study.optimize`` so Optuna's heartbeats run: a worker killed mid-trial leaves a RUNNING trial
that another worker fails once its heartbeat is stale,
and the retry callback queues a copy that the next free worker evaluates. Enqueued trials go first.
SIGTERM and SIGINT finish the current trial, then stop; a second signal fails it and stops at once.

The budget is global: ``run(n)`` stops when the study holds ``n`` complete trials. Workers check the
count before asking; two workers that ask at the same instant could still both start the n-th trial,
so after asking, a sampled trial that already has ``n`` complete-or-running trials numbered before it
is told PRUNED (user attribute ``source: surplus``) without being evaluated. Enqueued trials (manual,
recommendations, and retries of those) always run. The retry of a *sampled* trial counts against the
budget like a sampled trial: a worker may fill the slot its failed original freed before the retry is
queued, and the pair must not complete one trial too many.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from demix_core.background.launch import YIELD_ENV, wait_while_mixer_busy
from demix_core.engine import Engine
from demix_core.errors import EvaluationError, StudyError
from demix_core.mixing.bounds import mixture_from_trial_params
from demix_core.mixing.mixture import Mixture, param_name
from demix_core.search import record
from demix_core.search.resilience import StorageLost, StorageRetry, describe, storage_error
from demix_core.search.study import load_study
from demix_core.workspace.manifest import Workspace

# Failure-injection hook for tests: seconds to sleep inside each trial (so a kill lands mid-trial).
SLEEP_ENV = "DEMIX_TRIAL_SLEEP"


class Worker:
    """Evaluates a study's trials on one device.

    Args:
        ws: The workspace.
        study_name: The study (created beforehand).
        storage: Storage URL (default: the workspace's).
        device: ``auto``, ``cpu``, ``cuda``...
        suite: The suite to score with; must be the study's (its objectives are that suite's domains).
        log: Where progress lines go.

    Raises:
        StudyError: Unknown study, unreachable storage, or a suite other than the study's.
    """

    MAX_CONSECUTIVE_FAILURES = 3

    def __init__(self, ws: Workspace, study_name: str, *, storage: str | None = None, device: str = "auto",
                 suite: str | None = None, log: Callable[[str], None] = print) -> None:
        ws.require_checkpoints("a worker")
        self.id = record.worker_id()
        self.study = load_study(ws, study_name, storage=storage, worker_seed=os.getpid() % 10_000)
        attrs = self.study.user_attrs
        tasks, study_suite = record.tasks(attrs), record.suite(attrs)
        scored = f"tasks {','.join(tasks)!r}" if tasks else f"suite {study_suite!r}"
        if suite is not None and (tasks or suite != study_suite):
            raise StudyError(f"study {study_name!r} scores with {scored}, not {suite!r}; leave the "
                             "suite out (workers use the study's) or create another study for that suite")
        self.domains = record.domains(self.study)
        self.method = record.method(attrs)
        self.bounds = record.study_bounds(ws, attrs)  # every trial's mixture is mapped into the study's feasible set
        self.proxy = record.study_proxy(self.study)
        self.engine = Engine(ws, suite=None if tasks else study_suite, device=device, tasks=tasks or None,
                             include_paths=record.include_paths(attrs), proxy=self.proxy)
        if os.environ.get(YIELD_ENV):  # a dashboard's worker: also pause between the proxy's forward passes
            self.engine.proxy.model.register_forward_pre_hook(self._yield_to_mixer)
        self.sampler_name = record.sampler(attrs)
        self.log = log
        self.stopping = False
        self.done = 0
        self.budget: int | None = None
        self.failures = 0

    def _yield_to_mixer(self, module: Any, args: Any) -> None:
        """Forward pre-hook of a dashboard worker's proxy: wait while the Mixer measures (returns None: the
        inputs are unchanged)."""
        wait_while_mixer_busy(stop=self)

    def objective(self, trial: optuna.Trial) -> list[float]:
        """Merge the trial's mixture into the proxy and score it.

        Raises:
            StorageLost: The storage went away during the trial; the trial is left RUNNING for the
                heartbeat mechanism to fail and re-run (see :mod:`demix_core.search.resilience`).
        """
        try:
            return self._evaluate(trial)
        except Exception as exc:
            if storage_error(exc) is None:
                raise
            raise StorageLost(f"trial {trial.number}: {describe(exc)}") from exc

    def _evaluate(self, trial: optuna.Trial) -> list[float]:
        names = self.engine.names
        params = {param_name(n): trial.suggest_float(param_name(n), 0.0, 1.0) for n in names}
        if self._surplus(trial):
            record.write(trial, record.source_attrs(record.SURPLUS))
            raise optuna.TrialPruned(f"the study already has {self.budget} trials complete or running")
        # Who runs it, recorded first: a RUNNING trial in the dashboard shows its worker.
        record.write(trial, record.runner(worker=self.id, device=str(self.engine.device)))
        if not record.has_source(trial):  # an enqueued trial's source is recorded already
            record.write(trial, record.source_attrs(self.sampler_name))
        mix = mixture_from_trial_params(names, params, self.bounds)
        start = time.perf_counter()
        ev = self.engine.evaluate(mix, method=self.method)
        delay = float(os.environ.get(SLEEP_ENV, "0") or 0)
        if delay:
            time.sleep(delay)
        missing = [d for d in self.domains if d not in ev.scores.domains]
        if missing:
            raise EvaluationError(f"the suite reported no score for the study's domains {missing}; score the "
                                  "study with the suite or tasks it was created with")
        record.write(trial, record.result(mix, proxy=ev.proxy, scores=ev.scores, merge_s=ev.merge_seconds,
                                          trial_s=time.perf_counter() - start))
        return [ev.scores.domains[d] for d in self.domains]

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Whether a sampled trial lies past the global budget (see the module docstring)."""
        if self.budget is None:
            return False
        live = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        mine = [t for t in live if t.number == trial.number]
        if mine and "fixed_params" in mine[0].system_attrs and not self._sampled_retry(mine[0]):
            return False  # enqueued by a person or the recommender: always run
        return sum(t.number < trial.number for t in live) >= self.budget

    def _sampled_retry(self, trial: optuna.trial.FrozenTrial) -> bool:
        """A heartbeat retry of a trial the sampler drew (its source is the sampler, or unset if the original
        was lost before recording one)."""
        return "failed_trial" in trial.system_attrs and record.source(trial) in (None, self.sampler_name)

    def _after(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.failures += 1
            if self.failures >= self.MAX_CONSECUTIVE_FAILURES:
                self.log(f"[{self.id}] {self.failures} trials failed in a row; stopping (see the errors above)")
                self.stopping = True
        if trial.state == TrialState.COMPLETE:
            self.failures = 0
            self.done += 1
            vals = " ".join(f"{d}={v:.4f}" for d, v in zip(self.domains, trial.values or []))
            mix = Mixture.from_mapping(self.engine.names, record.mixture(trial) or {}).label()
            self.log(f"[{self.id}] trial {trial.number}: {mix} -> {vals}")
        if self.stopping:
            study.stop()

    def run(self, n_trials: int | None = None, *, timeout: float | None = None) -> int:
        """Work until the study has ``n_trials`` complete trials (None: until stopped), or ``timeout``.

        Returns:
            Trials this worker completed in this call.
        """
        main_thread = threading.current_thread() is threading.main_thread()  # signals: main thread only
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)} if main_thread else {}
        deadline = None if timeout is None else time.monotonic() + timeout
        self.budget = n_trials
        before = self.done
        retry = StorageRetry(self.id, self.log)
        try:
            while not self.stopping and (deadline is None or time.monotonic() < deadline):
                try:
                    if self._step(n_trials) == "done":
                        break
                except Exception as exc:
                    if storage_error(exc) is None:
                        raise
                    retry.failed(exc)  # logs, backs off; gives up (StudyError) after a bounded outage
                    continue
                except StorageLost as exc:
                    self.log(f"[{self.id}] storage lost during a trial ({exc}); it is re-run once the "
                             "database is back")
                    retry.failed(exc.__cause__ or exc)
                    continue
                retry.ok()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        return self.done - before

    def _step(self, n_trials: int | None) -> str:
        """One round: pause while the Mixer measures, fail stale trials, check the budget, run one trial.
        Returns ``done``, ``wait`` or ``ran``."""
        waited = wait_while_mixer_busy(stop=self)  # between trials: none of ours is running while paused
        if waited >= 1.0:
            self.log(f"[{self.id}] paused {waited:.1f}s while the Mixer measured")
        if self.stopping:
            return "wait"
        optuna.storages.fail_stale_trials(self.study)
        if n_trials is not None:
            trials = self.study.get_trials(deepcopy=False)
            complete = sum(t.state == TrialState.COMPLETE for t in trials)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            if complete >= n_trials and waiting == 0:
                return "done"
            if waiting == 0 and complete + running >= n_trials:
                time.sleep(0.5)  # others are finishing the last trials; a dead one goes stale
                return "wait"
        try:
            self.study.optimize(self.objective, n_trials=1, callbacks=[self._after],
                                catch=(RuntimeError, EvaluationError), gc_after_trial=False)
        except ValueError as exc:
            # The trial was finished by someone else first: on SQLite two workers may take one queued
            # trial (no row locks), and after an outage another worker may have failed it as stale.
            if not str(exc).startswith("Cannot tell a"):
                raise
            self.log(f"[{self.id}] another worker finished or failed the same trial first; result dropped")
        return "ran"

    def _stop(self, signum: int, frame: Any) -> None:
        if self.stopping:  # a second signal: stop now
            raise KeyboardInterrupt
        self.stopping = True
        self.log(f"[{self.id}] stopping after the current trial (signal {signum})")
