"""TIES merging: trim each task vector to its largest entries, elect a sign per entry by total
weighted mass, keep only the agreeing entries, and average them (weights normalised per entry over
the agreeing ones).

Reference: Yadav et al., "TIES-Merging" (arXiv 2306.01708); mergekit's ``ties``: magnitude trimming,
consensus by sum, ``normalize`` on, ``rescale`` off, ``lambda`` 1 and ``density`` 1 (no trimming) by
default — give ``density`` (the paper uses 0.2) to trim.
"""

from __future__ import annotations

import torch

from demix_core.merge.registry import ParamDef, register
from demix_core.merge.task_vectors import TaskVectorMethod, magnitude_mask


@register
class Ties(TaskVectorMethod):
    """Trim, elect sign, disjoint merge."""

    name = "ties"
    consensus = True
    reference = "Yadav et al. 2023, TIES-Merging (arXiv 2306.01708)"
    params = (
        ParamDef("density", 1.0, 0.0, 1.0, "fraction of each task vector kept (by magnitude)",
                 per_model=True),
        ParamDef("lambda", 1.0, -10.0, 10.0, "scale of the merged task vector"),
        ParamDef("normalize", 1.0, 0.0, 1.0, "1 divides by the sum of agreeing weights", boolean=True),
        ParamDef("rescale", 0.0, 0.0, 1.0, "1 restores each trimmed task vector's L1 norm", boolean=True),
    )

    def sparsify(self, delta: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return magnitude_mask(delta, self.values["density"], bool(self.values["rescale"]))
