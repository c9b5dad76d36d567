"""Linear merging: the mixture-weighted average of the components (DeMix's choice).

Reference: Wortsman et al., "Model soups" (2022); mergekit's ``linear`` with ``normalize: true``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from demix_core.merge.accumulate import weighted_sum
from demix_core.merge.registry import MergeMethod, Segment, register


@register
class Linear(MergeMethod):
    """``sum_i w_i * theta_i / sum_i w_i``."""

    name = "linear"
    reference = "Wortsman et al. 2022, Model soups (arXiv 2203.05482)"
    mergekit_globals = {"normalize": True}

    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        w = (weights / weights.sum()).to(torch.float32)
        return w @ stack.float()  # (K,) @ (K, n) -> (n,), fp32

    def merge_flat(
        self, components: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        segments: Sequence[Segment], out: torch.Tensor,
    ) -> None:
        # One streaming pass over the whole (K, N) matrix straight into the proxy's flat buffer, fp32
        # accumulation: (1,K)@(K,N)->(1,N).
        weighted_sum(components, weights.float() / weights.float().sum(), out)
