"""Task arithmetic: ``base + lambda * sum_i w_i (theta_i - base)``.

Reference: Ilharco et al., "Editing models with task arithmetic" (arXiv 2212.04089); mergekit's
``task_arithmetic``: no sparsification, no sign consensus, ``normalize`` off and ``lambda`` 1 by default.
DeMix mixture weights sum to 1, so with the defaults it equals linear up to rounding.
"""

from __future__ import annotations

from demix_core.merge.registry import ParamDef, register
from demix_core.merge.task_vectors import TaskVectorMethod


@register
class TaskArithmetic(TaskVectorMethod):
    """Weighted sum of task vectors added to the base."""

    name = "task_arithmetic"
    reference = "Ilharco et al. 2023, Editing models with task arithmetic (arXiv 2212.04089)"
    params = (
        ParamDef("lambda", 1.0, -10.0, 10.0, "scale of the summed task vectors"),
        ParamDef("normalize", 0.0, 0.0, 1.0, "1 divides by the sum of weights", boolean=True),
    )
