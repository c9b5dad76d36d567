"""Samplers: a registry (one small file each) of the ways a study proposes mixtures.

Every sampler proposes feasible mixtures only. Optuna's own (``tpe``, ``nsga2``, ``gp``, ``random``) draw the
raw ``u_i`` and the worker maps each draw onto the study's feasible set
(:func:`demix_core.mixing.bounds.mixture_from_trial_params`): their ``constraints_func`` would only mark an
infeasible trial after it was evaluated, wasting it. ``front`` and ``demix`` draw mixtures themselves and
project them onto the set before proposing (the DeMix prior's caps are the budget's upper bounds).

Importing this package registers them all and loads no Optuna; each build function loads what it needs.
Adding a sampler: one file that calls :func:`~demix_core.search.samplers.registry.register`, and its name
in the import line below.
"""

from __future__ import annotations

from demix_core.search.samplers.registry import SamplerSpec, get, names, register

# Registering, in the order help texts and pickers list them.
# isort: off
from demix_core.search.samplers import tpe, nsga2, gp, random, demix, front  # noqa: E402, F401
# isort: on

__all__ = ["SamplerSpec", "get", "names", "register"]
