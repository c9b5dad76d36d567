"""DeMix: the paper's rounds, a Dirichlet prior from the token counts, then predictor-ranked mixtures
(:mod:`demix_core.search.rounds`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from demix_core.search import record
from demix_core.search.samplers.registry import register

if TYPE_CHECKING:
    import optuna

    from demix_core.workspace.manifest import Workspace


def build(ws: Workspace, attrs: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """The DeMix sampler with the workspace's prior, rounds scaled to the study's budget, the study's bounds."""
    from demix_core.search.rounds import DemixSampler

    return DemixSampler.for_workspace(ws, seed=seed, n_trials=record.n_trials(attrs),
                                      bounds=record.study_bounds(ws, attrs))


register("demix", build, summary="the paper's rounds")
