"""Riding out storage outages: workers keep going when the database blips, and nothing is counted twice.

A dropped connection surfaces from Optuna in many shapes (``StorageInternalError`` raised from a
SQLAlchemy ``OperationalError``, or Optuna's own ``UnboundLocalError: ... 'updated_state'`` when the
tell after a trial fails too); :func:`storage_error` finds the storage error behind any of them.

The rules, for a worker on an RDB storage (heartbeats on):

- a storage error *inside* a trial raises :class:`StorageLost`, which Optuna does not catch: the trial is
  not told (it stays RUNNING), its heartbeat stops, and once the database is back any worker fails it as
  stale and :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` queues a copy that runs again;
- a storage error *between* trials (asking, counting, failing stale trials) is retried by
  :class:`StorageRetry` with exponential backoff, one log line per attempt, for a bounded time;
- heartbeats that fail during an outage are logged once and resume when the database returns
  (:class:`ResilientRDBStorage`), instead of killing the heartbeat thread;
- a trial created just before the cut, that never recorded a heartbeat, is failed and re-run like a
  stale one once it is older than a minute (:meth:`ResilientRDBStorage.orphans`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import optuna
from optuna.trial import TrialState

from demix_core.errors import StudyError

# Seconds a worker keeps retrying a storage that stays unreachable (override with this variable).
OUTAGE_ENV = "DEMIX_STORAGE_OUTAGE_S"
DEFAULT_OUTAGE_SECONDS = 120.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0


class StorageLost(BaseException):  # noqa: N818 - a signal to unwind, like KeyboardInterrupt, not an error
    """Raised inside a trial when the storage is lost, so Optuna leaves the trial RUNNING (untold).

    It derives from BaseException on purpose: Optuna's trial runner catches ``Exception`` and would tell
    the trial FAIL, and a FAILed trial is not retried by the heartbeat mechanism.
    """


def storage_error(exc: BaseException) -> BaseException | None:
    """The database connection error behind ``exc`` (following causes and contexts), or None."""
    import sqlalchemy.exc as sa

    kinds = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError,
             sa.PendingRollbackError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kinds):
            return current
        if isinstance(current, StorageLost):
            return current
        current = current.__cause__ or current.__context__
    return None


def describe(exc: BaseException) -> str:
    """A short one-line description of a storage error: the driver's own message, not Optuna's wrapper's."""
    root = storage_error(exc)
    if root is not None and not isinstance(root, StorageLost):
        exc = getattr(root, "orig", None) or root
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}"


class StorageRetry:
    """Bounded exponential backoff across one outage; ``ok()`` after any success resets it.

    Args:
        who: Prefix of the log lines (the worker id).
        log: Where the one-line messages go.
        limit: Seconds of consecutive failures tolerated (default: ``DEMIX_STORAGE_OUTAGE_S`` or 120).
        sleep: The sleep function (tests pass a fake).
    """

    def __init__(self, who: str, log: Callable[[str], None], *, limit: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.who, self.log, self.sleep = who, log, sleep
        self.limit = limit if limit is not None else float(os.environ.get(OUTAGE_ENV) or DEFAULT_OUTAGE_SECONDS)
        self.since: float | None = None
        self.attempt = 0
        self.outages = 0

    def failed(self, exc: BaseException) -> None:
        """Log, then wait before the next attempt.

        Raises:
            StudyError: The storage has been unreachable for longer than ``limit`` seconds.
        """
        now = time.monotonic()
        if self.since is None:
            self.since, self.attempt = now, 0
            self.outages += 1
        elapsed = now - self.since
        if elapsed >= self.limit:
            raise StudyError(f"the study storage has been unreachable for {elapsed:.0f}s ({describe(exc)}); "
                             "check the database server and network, then start the worker again")
        self.attempt += 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.attempt - 1), max(0.0, self.limit - elapsed))
        self.log(f"[{self.who}] storage unreachable ({describe(exc)}); retry {self.attempt} in {delay:.1f}s "
                 f"({elapsed:.1f}s into the outage, giving up after {self.limit:.0f}s)")
        self.sleep(delay)

    def ok(self) -> None:
        """The storage answered: end the outage (logged once)."""
        if self.since is not None:
            self.log(f"[{self.who}] storage is back after {time.monotonic() - self.since:.1f}s; carrying on")
            self.since, self.attempt = None, 0


class ResilientRDBStorage(optuna.storages.RDBStorage):
    """An RDB storage whose heartbeats survive an outage: a failed heartbeat is logged, the thread goes on.

    Args:
        url: The database URL.
        log: Where the one-line messages go (default: stderr).
        **kwargs: Passed to :class:`optuna.storages.RDBStorage`.
    """

    # A RUNNING trial without any heartbeat this old is an orphan (its worker was lost before the first beat).
    orphan_seconds = 60.0

    def __init__(self, url: str, *, log: Callable[[str], None] | None = None, **kwargs: object) -> None:
        super().__init__(url, **kwargs)  # type: ignore[arg-type]
        self._log = log or _stderr
        self._heartbeat_down: set[int] = set()
        self._heartbeat_lock = threading.Lock()

    def record_heartbeat(self, trial_id: int) -> None:
        """Record a heartbeat; during an outage, log once per trial and let the next beat try again."""
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            if storage_error(exc) is None:
                raise
            with self._heartbeat_lock:
                first = trial_id not in self._heartbeat_down
                self._heartbeat_down.add(trial_id)
            if first:
                self._log(f"heartbeat of trial id {trial_id} not recorded ({describe(exc)}); retrying every "
                          f"{self.heartbeat_interval}s")
            return
        with self._heartbeat_lock:
            self._heartbeat_down.discard(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials, plus RUNNING trials that never recorded a heartbeat (see :meth:`orphans`)."""
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [t for t in self.orphans(study_id) if t not in stale]

    def orphans(self, study_id: int) -> list[int]:
        """RUNNING trials with no heartbeat at all, started more than ``orphan_seconds`` ago.

        A worker lost between creating a trial and its first heartbeat (the connection cut, or the process
        killed, in that instant) leaves one; Optuna never sees it as stale, so it would stay RUNNING forever.
        """
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        # Optuna 5 stores start times as naive UTC in this column (the model's datetime_start is local time).
        cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=self.orphan_seconds)
        with _create_scoped_session(self.scoped_session) as session:
            rows = (
                session.query(models.TrialModel.trial_id)
                .outerjoin(models.TrialHeartbeatModel,
                           models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .filter(models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                .filter(models.TrialModel._datetime_start_utc < cutoff)
                .all()
            )
        return [int(r[0]) for r in rows]


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)
