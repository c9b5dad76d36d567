"""Latest-first measuring: the newest slider position is measured next, none in between.

:class:`LatestFirst` evaluates mixtures on one background thread per engine. Each client (a dashboard
session) has at most one request waiting: a newer request cancels the older one that has not started.
:func:`measure` scores a mixture with as many torch threads as the machine has idle cores right now
(:func:`threads_now`): on a busy machine a second thread waits at every barrier for a core that another
process holds (on 2 cores beside other work: ~0.95 s per evaluation with 2 threads, ~0.13 s with 1).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from demix_core.mixing.mixture import Mixture

T = TypeVar("T")


class LatestFirst:
    """Runs jobs on one background thread; each client keeps only its newest waiting job.

    A dashboard session submits a measurement per slider position. The job already running finishes (its
    result still lands in the engine's recent results), but a client's job that has not started yet is
    cancelled by that client's next submission, so a fast-moving slider is measured at its newest position
    next, never at the positions it passed.
    """

    def __init__(self, name: str = "demix-mixer") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._waiting: dict[str, list[Future[Any]]] = {}
        self._lock = threading.Lock()
        self.cancelled = 0  # jobs cancelled before they started (for benchmarks and tests)

    def submit(self, client: str, fn: Callable[..., T], *args: Any, replace: bool = True, **kwargs: Any) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` for ``client``.

        Args:
            client: Who asks (one dashboard session).
            fn: The job.
            replace: Cancel this client's jobs that have not started yet (False: queue behind them, for a job
                that belongs with the previous one, such as a second proxy of the same mixture).
        """
        with self._lock:
            mine = [f for f in self._waiting.get(client, []) if not f.done()]
            if replace:
                for f in mine:
                    if f.cancel():
                        self.cancelled += 1
                mine = [f for f in mine if not f.cancelled()]
            future = self._pool.submit(fn, *args, **kwargs)
            self._waiting[client] = [*mine, future]
            return future

    def shutdown(self) -> None:
        """Cancel the waiting jobs and stop the thread once the running one ends."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def wait(future: Future[T], *, poll: float = 0.01, tick: Callable[[], object] | None = None) -> T:
    """Wait for ``future``, calling ``tick`` every ``poll`` seconds.

    The dashboard's ``tick`` touches Streamlit's session state, which is where Streamlit interrupts a
    script for a newer widget value: the page stops waiting for a stale measurement at once.
    """
    while True:
        try:
            return future.result(timeout=poll)
        except TimeoutError:
            if tick is not None:
                tick()


def threads_now(cores: int | None = None) -> int:
    """Torch threads for one evaluation now: the cores not taken by other runnable tasks (at least 1).

    Reads the instantaneous count of runnable tasks in ``/proc/loadavg`` (Linux; it counts this thread);
    elsewhere the 1-minute load average stands in for it.
    """
    cores = cores or os.cpu_count() or 1
    try:
        with open("/proc/loadavg") as f:
            others = int(f.read().split()[3].split("/")[0]) - 1
    except (OSError, IndexError, ValueError):
        others = int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - max(0, others)))


def measure(engine: Any, mixture: Mixture, *, method: str = "linear") -> Any:
    """``engine.evaluate(mixture, method=method)`` with :func:`threads_now` torch threads on this thread
    (torch's thread count is per calling thread here; other threads keep theirs)."""
    import torch

    torch.set_num_threads(threads_now())
    return engine.evaluate(mixture, method=method)


