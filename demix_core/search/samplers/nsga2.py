"""NSGA-II: Optuna's multi-objective genetic algorithm, populations of 20."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from demix_core.search.samplers.registry import register

if TYPE_CHECKING:
    import optuna

    from demix_core.workspace.manifest import Workspace


def build(ws: Workspace, attrs: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's NSGA-II sampler (population 20)."""
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)


register("nsga2", build, summary="Optuna's NSGA-II")
