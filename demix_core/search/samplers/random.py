"""Random: independent uniform draws (the baseline every other sampler should beat)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from demix_core.search.samplers.registry import register

if TYPE_CHECKING:
    import optuna

    from demix_core.workspace.manifest import Workspace


def build(ws: Workspace, attrs: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's random sampler."""
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


register("random", build, summary="uniform random draws")
