"""Front: a simplex design, then the largest predicted hypervolume gain under a Scheffé surrogate
(:mod:`demix_core.search.front`); fills the Pareto front in the fewest trials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from demix_core.search import record
from demix_core.search.samplers.registry import register

if TYPE_CHECKING:
    import optuna

    from demix_core.workspace.manifest import Workspace


def build(ws: Workspace, attrs: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """The front sampler over the workspace's components, inside the study's bounds."""
    from demix_core.search.front import FrontSampler

    return FrontSampler(ws.component_names, seed=seed, bounds=record.study_bounds(ws, attrs))


register("front", build, summary="fills the Pareto front in the fewest trials")
