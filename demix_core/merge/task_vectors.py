"""Shared arithmetic of the task-vector family (task arithmetic, TIES, DARE).

Definitions follow mergekit 0.1.5's generalized task arithmetic: deltas ``d_i = theta_i - base`` are
optionally sparsified per component (in component order, zero weights included), weighted by ``w_i``,
optionally kept only where their sign agrees with the sign of the weighted sum (TIES consensus by
mass), summed, optionally divided by the (agreeing) weight sum, scaled by ``lambda`` and added to the
base. mergekit's ``int8_mask`` only changes the dtype of its sign mask (memory), never the values, so
it has no counterpart here.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from demix_core.merge.registry import MergeMethod


def _rescaled(delta: torch.Tensor, kept: torch.Tensor, rescale: bool, eps: float = 1e-7) -> torch.Tensor:
    """``kept`` scaled so its L1 norm equals ``delta``'s (unless either norm is below ``eps``)."""
    if not rescale:
        return kept
    before, after = delta.abs().sum(), kept.abs().sum()
    if before < eps or after < eps:
        return kept
    return kept * (before / after)


def magnitude_mask(delta: torch.Tensor, density: float, rescale: bool = False) -> torch.Tensor:
    """TIES trimming: keep the ``max(1, int(density * n))`` entries of largest magnitude.

    Args:
        delta: (n,) one component's delta.
        density: Fraction to keep, in [0, 1] (>= 1 keeps all, <= 0 keeps none).
        rescale: Scale the kept entries so the L1 norm matches the untrimmed delta.

    Returns:
        (n,) the trimmed delta, same dtype.
    """
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    keep = max(1, int(density * delta.numel()))
    order = torch.argsort(delta.abs().float(), descending=True)[:keep]  # ranks in fp32, as mergekit on CPU
    mask = torch.zeros_like(delta)
    mask[order] = 1
    return _rescaled(delta, delta * mask, rescale)


def random_mask(delta: torch.Tensor, density: float, generator: torch.Generator | None,
                rescale: bool) -> torch.Tensor:
    """DARE: keep each entry with probability ``density``; with ``rescale``, restore the L1 norm.

    Args:
        delta: (n,) one component's delta.
        density: Keep probability (>= 1 keeps all without drawing).
        generator: Seeded generator for reproducible masks.
        rescale: Rescale the kept entries so the L1 norm matches the unmasked delta.
    """
    if density >= 1:
        return delta
    # torch.bernoulli has no float16 kernel on CPU: work in fp32 there (bf16 is fine), as mergekit does.
    work_dtype = torch.float32 if delta.device.type == "cpu" and delta.dtype == torch.float16 else delta.dtype
    work = delta.to(work_dtype)
    mask = torch.bernoulli(torch.full_like(work, density), generator=generator)
    return _rescaled(work, work * mask, rescale).to(delta.dtype)


def majority_sign_mask(weighted: torch.Tensor) -> torch.Tensor:
    """TIES sign election by total mass.

    Args:
        weighted: (K, n) weighted deltas.

    Returns:
        (K, n) 1 where an entry's sign equals the sign of its column sum (a zero sum counts as
        positive; a zero entry never agrees), else 0; in ``weighted``'s dtype.
    """
    majority = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0).to(weighted.dtype)  # (n,)
    return (weighted.sign() == majority).to(weighted.dtype)


def combine(
    deltas: torch.Tensor, weights: torch.Tensor, base: torch.Tensor, *, consensus: bool,
    normalize: bool, scale: float,
) -> torch.Tensor:
    """Weight, elect signs (optional), sum, normalise (optional), scale and add to the base.

    Args:
        deltas: (K, n) sparsified deltas.
        weights: (K,) weights (cast to the deltas' dtype, as mergekit does).
        base: (n,) base values.
        consensus: Apply the TIES sign election.
        normalize: Divide by the sum of weights (per entry, over the agreeing ones with consensus).
        scale: The ``lambda`` factor.

    Returns:
        (n,) the merged values in the base's dtype.
    """
    w = weights.to(deltas.dtype).unsqueeze(1)  # (K, 1)
    weighted = deltas * w  # (K, n)
    if consensus:
        mask = majority_sign_mask(weighted)  # (K, n)
        mixed = (weighted * mask).sum(dim=0)  # (n,)
        divisor = (w * mask).sum(dim=0)  # (n,)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(dim=0)  # (n,)
        divisor = w.sum(dim=0).expand_as(mixed).clone()  # (n,)
        divisor[divisor.abs() < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    if scale != 1:
        mixed = mixed * scale
    return (base + mixed).to(base.dtype)


class TaskVectorMethod(MergeMethod):
    """A generalized task-arithmetic method: subclasses choose the sparsifier and the consensus.

    Subclasses declare ``params`` including ``lambda`` and ``normalize`` (and ``density`` /
    ``rescale`` when they sparsify) and override :meth:`sparsify`.
    """

    needs_base = True
    consensus: ClassVar[bool] = False

    def sparsify(self, delta: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Sparsify one component's (n,) delta; the identity by default."""
        return delta

    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if base is None:
            raise self.missing_base()
        deltas = stack - base  # (K, n)
        if type(self).sparsify is not TaskVectorMethod.sparsify:
            deltas = torch.stack([self.sparsify(row, generator) for row in deltas])  # (K, n)
        return combine(deltas, weights, base, consensus=self.consensus,
                       normalize=bool(self.values["normalize"]), scale=self.values["lambda"])
