"""The ``merge`` proxy kind (the default): the components' weights merged into one model, scored by the suite.

The mixture is merged into the engine's one live proxy in place (any registered merge method) and the suite scores
that model: the DeMix proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from demix_core.proxy.registry import ProxyKind, register

if TYPE_CHECKING:
    from demix_core.evaluate.scores import Scores
    from demix_core.mixing.mixture import Mixture


@register
class Merge(ProxyKind):
    """``sum_i w_i theta_i`` (or another merge method) in one model."""

    name = "merge"
    label = "merged weights"
    report_name = "merged proxies (DeMix)"
    help = "weights merged into one model"
    merges = True

    def score(self, mix: Mixture, *, method: str, params: Mapping[str, float] | None,
              seed: int) -> tuple[Scores, float]:
        host = self.host
        host.resident.merge_into(host.proxy, mix, method=method, params=params, seed=seed)
        return host.suite.score(host.proxy.model), host.proxy.last_merge_seconds
