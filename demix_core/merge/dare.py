"""DARE: drop each task-vector entry at random (keep probability ``density``), rescale the rest so the
L1 norm is kept, then combine linearly (``dare_linear``) or with TIES sign election (``dare_ties``).

Masks are drawn from the seeded generator the merger passes in, component by component, so a merge is
reproducible for a seed. Reference: Yu et al., "Language models are Super Mario" (arXiv 2311.03099);
mergekit's ``dare_linear`` / ``dare_ties``: ``rescale`` on, ``normalize`` off, ``lambda`` 1 and
``density`` 1 (nothing dropped) by default. mergekit draws its masks from torch's global RNG in its own
tensor order, so the two agree in distribution, not bit for bit (at ``density`` 1 they agree exactly).
"""

from __future__ import annotations

import torch

from demix_core.merge.registry import ParamDef, register
from demix_core.merge.task_vectors import TaskVectorMethod, random_mask

_DARE_PARAMS = (
    ParamDef("density", 1.0, 0.0, 1.0, "probability of keeping each entry", per_model=True),
    ParamDef("lambda", 1.0, -10.0, 10.0, "scale of the merged task vector"),
    ParamDef("normalize", 0.0, 0.0, 1.0, "1 divides by the sum of weights", boolean=True),
    ParamDef("rescale", 1.0, 0.0, 1.0, "1 restores each task vector's L1 norm after dropping",
             boolean=True),
)


class _Dare(TaskVectorMethod):
    reference = "Yu et al. 2024, Language models are Super Mario (arXiv 2311.03099)"
    params = _DARE_PARAMS

    def sparsify(self, delta: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return random_mask(delta, self.values["density"], generator, bool(self.values["rescale"]))


@register
class DareLinear(_Dare):
    """Random drop + rescale, linear combination."""

    name = "dare_linear"


@register
class DareTies(_Dare):
    """Random drop + rescale, TIES sign election."""

    name = "dare_ties"
    consensus = True
