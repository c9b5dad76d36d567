"""TIES merging: trim each task vector to its largest entries, elect a sign per entry by total mass,
keep only agreeing entries, and average them (weights normalised over the agreeing ones).

Reference: Yadav et al., "TIES-Merging" (arXiv 2306.01708); mergekit's ``ties`` (normalize on).
"""

from __future__ import annotations

import torch

from demix_core.merge.registry import MergeMethod, ParamDef, register
from demix_core.merge.task_vectors import combine, magnitude_mask


@register
class Ties(MergeMethod):
    """Trim, elect sign, disjoint merge."""

    name = "ties"
    needs_base = True
    reference = "Yadav et al. 2023, TIES-Merging (arXiv 2306.01708)"
    params = (
        ParamDef("density", 0.5, 0.0, 1.0, "fraction of each task vector kept (by magnitude)",
                 per_model=True),
        ParamDef("lambda", 1.0, 0.0, 10.0, "scale of the merged task vector"),
        ParamDef("normalize", 1.0, 0.0, 1.0, "1 divides by the sum of agreeing weights", boolean=True),
    )

    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        assert base is not None
        deltas = torch.stack([magnitude_mask(row - base, self.values["density"]) for row in stack])
        return combine(deltas, weights, base, consensus=True,
                       normalize=bool(self.values["normalize"]), scale=self.values["lambda"])

