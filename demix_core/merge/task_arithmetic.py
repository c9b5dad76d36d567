"""Task arithmetic: ``base + lambda * sum_i w_i (theta_i - base)``.

Reference: Ilharco et al., "Editing models with task arithmetic" (arXiv 2212.04089); mergekit's
``task_arithmetic`` (normalize off by default). With mixture weights summing to 1 it equals linear.
"""

from __future__ import annotations

import torch

from demix_core.merge.registry import MergeMethod, ParamDef, register
from demix_core.merge.task_vectors import combine


@register
class TaskArithmetic(MergeMethod):
    """Weighted sum of task vectors added to the base."""

    name = "task_arithmetic"
    needs_base = True
    reference = "Ilharco et al. 2023, Editing models with task arithmetic (arXiv 2212.04089)"
    params = (
        ParamDef("lambda", 1.0, 0.0, 10.0, "scale of the summed task vectors"),
        ParamDef("normalize", 0.0, 0.0, 1.0, "1 divides by the sum of weights", boolean=True),
    )

    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        assert base is not None  # merge_flat checks needs_base before calling
        return combine(stack - base, weights, base, consensus=False,
                       normalize=bool(self.values["normalize"]), scale=self.values["lambda"])

