"""DARE: drop each task-vector entry at random (keep probability ``density``), rescale the rest so the
L1 norm is kept, then combine linearly (``dare_linear``) or with TIES sign election (``dare_ties``).
Masks are drawn from a seeded generator, so a merge is reproducible.

Reference: Yu et al., "Language models are Super Mario" (arXiv 2311.03099); mergekit's ``dare_linear``
and ``dare_ties`` (rescale on, normalize off). mergekit draws its masks from torch's global RNG, so the
two agree in distribution, not bit for bit.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from demix_core.merge.registry import MergeMethod, ParamDef, register
from demix_core.merge.task_vectors import combine, random_mask


class _Dare(MergeMethod):
    needs_base = True
    reference = "Yu et al. 2024, Language models are Super Mario (arXiv 2311.03099)"
    consensus: ClassVar[bool] = False
    params = (
        ParamDef("density", 0.5, 0.0, 1.0, "probability of keeping each entry", per_model=True),
        ParamDef("lambda", 1.0, 0.0, 10.0, "scale of the merged task vector"),
        ParamDef("normalize", 0.0, 0.0, 1.0, "1 divides by the sum of weights", boolean=True),
        ParamDef("rescale", 1.0, 0.0, 1.0, "1 restores each task vector's L1 norm after dropping",
                 boolean=True),
    )

    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        assert base is not None
        deltas = torch.stack([
            random_mask(row - base, self.values["density"], generator, bool(self.values["rescale"]))
            for row in stack
        ])
        return combine(deltas, weights, base, consensus=self.consensus,
                       normalize=bool(self.values["normalize"]), scale=self.values["lambda"])


@register
class DareLinear(_Dare):
    """Random drop + rescale, linear combination."""

    name = "dare_linear"


@register
class DareTies(_Dare):
    """Random drop + rescale, TIES sign election."""

    name = "dare_ties"
    consensus = True
