"""GP: Optuna's Gaussian-process Bayesian optimisation, after 10 random trials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from demix_core.search.samplers.registry import register

if TYPE_CHECKING:
    import optuna

    from demix_core.workspace.manifest import Workspace


def build(ws: Workspace, attrs: Mapping[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's GP sampler (10 startup trials)."""
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=10)


register("gp", build, summary="Optuna's Gaussian-process sampler")
