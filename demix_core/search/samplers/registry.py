"""One registry of samplers: each is a small file that registers a name, a one-line summary and a build function.

A build function makes the Optuna sampler from the workspace, the study's settings (its user attributes,
:mod:`demix_core.search.record`) and a seed. It imports Optuna (and the sampler's own module) inside itself,
so importing the registry stays light: the CLI's help and a page's picker list the names without loading
Optuna. Every sampler proposes feasible mixtures only (see :mod:`demix_core.search.samplers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from demix_core.errors import StudyError, near_matches

if TYPE_CHECKING:
    import optuna

    from demix_core.workspace.manifest import Workspace

Build = Callable[["Workspace", Mapping[str, Any], int], "optuna.samplers.BaseSampler"]


class SamplerSpec(NamedTuple):
    """A registered sampler (a named tuple: no dataclasses import, the CLI's help stays fast).

    Attributes:
        name: What ``--sampler`` and a study's ``sampler`` setting call it.
        summary: One line for help texts.
        build: ``build(ws, attrs, seed)`` -> the Optuna sampler.
    """

    name: str
    summary: str
    build: Build

    def make(self, ws: Workspace, attrs: Mapping[str, Any], *, seed: int) -> optuna.samplers.BaseSampler:
        """The sampler for a study of ``ws`` with settings ``attrs``, seeded with ``seed``."""
        return self.build(ws, attrs, seed)


_REGISTRY: dict[str, SamplerSpec] = {}


def register(name: str, build: Build, *, summary: str) -> SamplerSpec:
    """Add a sampler to the registry.

    Raises:
        StudyError: ``name`` is registered already.
    """
    if name in _REGISTRY:
        raise StudyError(f"sampler {name!r} is registered twice")
    _REGISTRY[name] = SamplerSpec(name, summary, build)
    return _REGISTRY[name]


def names() -> list[str]:
    """Every registered sampler name, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> SamplerSpec:
    """The sampler registered as ``name``.

    Raises:
        StudyError: Unknown name (the message lists the known samplers and the near matches).
    """
    if name not in _REGISTRY:
        close = near_matches(name, names())
        hint = f" ({close})" if close.startswith("did") else ""
        raise StudyError(f"unknown sampler {name!r}; use one of {', '.join(names())}{hint}")
    return _REGISTRY[name]
