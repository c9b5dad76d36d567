"""Storage-outage building blocks without a server: error classification, bounded backoff, orphan trials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc as sa
from optuna.trial import TrialState

from demix_core.errors import StudyError
from demix_core.search.resilience import ResilientRDBStorage, StorageLost, StorageRetry, describe, storage_error
from demix_core.search.study import create_study, load_study
from demix_core.workspace.manifest import load_workspace


def _optuna_shaped_error() -> BaseException:
    """What Optuna raises when the tell after a trial hits a dropped connection: an UnboundLocalError whose
    context is a StorageInternalError raised from the driver's OperationalError."""
    try:
        try:
            try:
                raise sa.OperationalError("UPDATE trials", {}, ConnectionResetError("server closed the connection"))
            except sa.OperationalError as exc:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
        except optuna.exceptions.StorageInternalError:
            raise UnboundLocalError("cannot access local variable 'updated_state'") from None
    except UnboundLocalError as exc:
        return exc


def test_storage_error_is_found_behind_optunas_wrappers() -> None:
    exc = _optuna_shaped_error()
    assert exc.__cause__ is None and exc.__context__ is not None  # `from None` hides, the context stays
    found = storage_error(exc)
    assert isinstance(found, sa.OperationalError)
    assert describe(exc) == "ConnectionResetError: server closed the connection"
    assert storage_error(ValueError("Cannot tell a FAIL trial.")) is None
    assert storage_error(KeyError("x")) is None
    lost = StorageLost("trial 3")
    assert storage_error(lost) is lost


def test_backoff_is_bounded_logged_and_reset() -> None:
    lines: list[str] = []
    slept: list[float] = []
    retry = StorageRetry("w", lines.append, limit=1000, sleep=slept.append)
    for _ in range(7):
        retry.failed(sa.OperationalError("SELECT", {}, OSError("refused")))
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(lines) == 7 and all(line.count("\n") == 0 and "retry" in line and "refused" in line for line in lines)
    retry.ok()
    assert lines[-1].startswith("[w] storage is back after")
    retry.failed(sa.OperationalError("SELECT", {}, OSError("refused")))
    assert slept[-1] == 0.5 and retry.outages == 2  # a new outage starts the backoff again

    gives_up = StorageRetry("w", lines.append, limit=0.0, sleep=slept.append)
    with pytest.raises(StudyError, match="unreachable for 0s .*start the worker again"):
        gives_up.failed(sa.OperationalError("SELECT", {}, OSError("refused")))


def test_a_running_trial_without_heartbeat_is_failed_and_retried(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    create_study(ws, "o", sampler="random")
    study = load_study(ws, "o")
    storage = study._storage._backend  # Optuna wraps RDB storages in a cache that forwards heartbeat calls
    assert isinstance(storage, ResilientRDBStorage)
    # A worker lost right after creating its trial: RUNNING, never a heartbeat.
    orphan = storage.create_new_trial(study._study_id)
    fresh = storage.create_new_trial(study._study_id)
    storage.set_trial_param(orphan, "w_alpha", 0.3, optuna.distributions.FloatDistribution(0, 1))
    study.enqueue_trial({"w_alpha": 0.5})  # a WAITING trial is no orphan
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=storage.orphan_seconds + 5)
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        session.query(models.TrialModel).filter(models.TrialModel.trial_id == orphan).update(
            {models.TrialModel._datetime_start_utc: old}, synchronize_session=False)
    assert storage.orphans(study._study_id) == [orphan]
    optuna.storages.fail_stale_trials(study)
    states = {t._trial_id: t.state for t in study.get_trials()}
    assert states[orphan] == TrialState.FAIL and states[fresh] == TrialState.RUNNING
    retry = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == 0]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING and retry[0].params == {"w_alpha": 0.3}
