"""The ``ensemble`` proxy kind: the components' output ensemble, ``log sum_i w_i p_i``, scored from cached log-probs.

Each component's log-probs of the suite's tokens are computed once per suite (from the resident components: a
component's one-hot merge written into the live proxy, so nothing is read from disk) and kept in
``<workspace>/cache/ensemble`` (or the engine's ``ensemble_cache``); a mixture is then scored in milliseconds by an
:class:`~demix_core.evaluate.ensemble_scorer.EnsembleScorer`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from demix_core.proxy.registry import ProxyHost, ProxyKind, register

if TYPE_CHECKING:
    import torch

    from demix_core.evaluate.ensemble_scorer import EnsembleScorer
    from demix_core.evaluate.scores import Scores
    from demix_core.mixing.mixture import Mixture


@register
class Ensemble(ProxyKind):
    """The mixture of the components' next-token distributions."""

    name = "ensemble"
    label = "output ensemble"
    report_name = "output ensemble"
    help = "output ensemble from cached component log-probs, in <workspace>/cache/ensemble"
    preparing = "each component's log-probs of the suite's tokens (cached)"

    def __init__(self, host: ProxyHost) -> None:
        super().__init__(host)
        self._scorer: EnsembleScorer | None = None

    @property
    def ready(self) -> bool:
        return self._scorer is not None

    def prepare(self) -> None:
        self.scorer()

    def how(self, method: str) -> str:
        return "output ensemble, cached log-probs"

    def scorer(self) -> EnsembleScorer:
        """The scorer on the host's suite (built, or read from the disk cache, once).

        A component whose log-probs are not cached is scored from the resident components (see the module).
        """
        from demix_core.evaluate.ensemble_scorer import CACHE_FOLDER, EnsembleScorer

        host = self.host
        with host.lock:
            if self._scorer is None:
                self._scorer = EnsembleScorer.build(
                    host.suite, host.workspace.component_paths(), names=host.resident.names, device=host.device,
                    cache_dir=host.ensemble_cache or host.workspace.path(str(CACHE_FOLDER)), lock=host.lock,
                    load=self._resident_component)
            return self._scorer

    def _resident_component(self, i: int) -> torch.nn.Module:
        """Component ``i`` as a live model: its one-hot mixture merged into the proxy (the proxy is rewritten by
        the next merge; callers hold the lock)."""
        resident, proxy = self.host.resident, self.host.proxy
        k = len(resident.names)
        resident.merge_into(proxy, resident.mixture([float(j == i) for j in range(k)]), method="linear")
        return proxy.model

    def score(self, mix: Mixture, *, method: str, params: Mapping[str, float] | None,
              seed: int) -> tuple[Scores, float]:
        scorer = self.scorer()
        start = time.perf_counter()
        scores = scorer.score(mix.weights)
        scores.seconds = time.perf_counter() - start
        return scores, 0.0
