"""Opening the Optuna storage that holds every study: SQLite, PostgreSQL, MySQL or a journal file."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna

from demix_core.errors import StudyError
from demix_core.search.resilience import ResilientRDBStorage
from demix_core.workspace.manifest import Workspace

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 6

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``sqlite:///``, ``postgresql://``, ``mysql://`` or ``journal:PATH`` URLs.

    RDB storages get heartbeats, so a trial whose worker died is failed and retried by another worker.

    Raises:
        StudyError: The URL is malformed or the server cannot be reached.
    """
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            path = url[len("journal:"):]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(path))
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return ResilientRDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
            engine_kwargs=_engine_kwargs(url),
        )
    except Exception as exc:  # sqlalchemy / driver errors of many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise StudyError(f"cannot open storage {url} ({first[:200]}); check the URL and that the server is "
                         "running") from None


def _engine_kwargs(url: str) -> dict[str, Any] | None:
    """Server databases: check pooled connections before use, and give up connecting after 10 s (a cut
    network would otherwise hang a worker in connect instead of letting it retry)."""
    if url.startswith("sqlite"):
        return None
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def storage_url(ws: Workspace, storage: str | None = None) -> str:
    """The storage URL to use: an explicit one, else the workspace's."""
    return storage or ws.storage_url()


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Existing study names in a storage."""
    return sorted(s.study_name for s in storage.get_all_studies())
