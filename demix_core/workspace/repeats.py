"""A workspace's models grouped by mixture: the references of one mixture trained at several seeds are its repeats
(``demix workspace train-reference --seed S``, ``train-references --train-seed S``, ``demo --seed S``), listed as one
mixture by ``demix workspace`` and the dashboard's Workspace page.

Weights that agree to :data:`DECIMALS` decimals are one mixture, as in the noise floor
(:func:`demix_core.runs.noise.repeat_groups`): what a listing shows as repeats is what validation pools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from demix_core.workspace.manifest import ReferenceEntry

DECIMALS = 6
REFERENCE = "reference"  # a ReferenceEntry's kind for a model really trained on its mixture; others: trained proxies


@dataclass(frozen=True)
class MixtureModels:
    """One mixture's models.

    Attributes:
        mixture: Its weights (the first model's, as the manifest holds them).
        references: Its references (the repeats), in seed order; models of one seed keep the manifest's order.
        trained_proxies: Its compute-matched trained proxies, in the manifest's order.
    """

    mixture: dict[str, float]
    references: tuple[ReferenceEntry, ...]
    trained_proxies: tuple[ReferenceEntry, ...] = ()

    @property
    def names(self) -> list[str]:
        """The references' names, in seed order."""
        return [r.name for r in self.references]

    @property
    def seeds(self) -> list[int]:
        """The references' training seeds, in order (a model recorded without one: 0)."""
        return [r.seed or 0 for r in self.references]


def mixture_key(mixture: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """The mixture's positive weights at :data:`DECIMALS` decimals, by component: equal keys are one mixture."""
    rounded = ((c, round(float(w), DECIMALS)) for c, w in mixture.items())
    return tuple(sorted((c, w) for c, w in rounded if w != 0))


def group_by_mixture(models: Iterable[ReferenceEntry]) -> list[MixtureModels]:
    """``models`` (a manifest's references and trained proxies) grouped by mixture, the mixtures in the order their
    first model appears."""
    groups: dict[tuple[tuple[str, float], ...], list[ReferenceEntry]] = {}
    for m in models:
        groups.setdefault(mixture_key(m.mixture), []).append(m)
    return [MixtureModels(dict(found[0].mixture),
                          tuple(sorted((m for m in found if m.kind == REFERENCE), key=lambda m: m.seed or 0)),
                          tuple(m for m in found if m.kind != REFERENCE))
            for found in groups.values()]
