"""Shared arithmetic of the task-vector family (task arithmetic, TIES, DARE).

Definitions follow mergekit's generalized task arithmetic: deltas ``d_i = theta_i - base`` are optionally
sparsified per component, weighted by ``w_i``, optionally kept only where they agree with the majority
sign (TIES consensus), summed, optionally divided by the (masked) weight sum, scaled by ``lambda`` and
added to the base.
"""

from __future__ import annotations

import torch


def magnitude_mask(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``max(1, int(density * n))`` entries of largest magnitude (TIES trimming).

    Args:
        delta: (n,) one component's delta.
        density: Fraction to keep, in [0, 1].

    Returns:
        (n,) the trimmed delta.
    """
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    keep = max(1, int(density * delta.numel()))
    order = torch.argsort(delta.abs().float(), descending=True)[:keep]
    mask = torch.zeros_like(delta)
    mask[order] = 1
    return delta * mask


def random_mask(delta: torch.Tensor, density: float, generator: torch.Generator | None,
                rescale: bool) -> torch.Tensor:
    """DARE: keep each entry with probability ``density``; with ``rescale``, restore the L1 norm.

    Args:
        delta: (n,) one component's delta.
        density: Keep probability.
        generator: Seeded generator for reproducible masks.
        rescale: Rescale the kept entries so the L1 norm matches the unmasked delta.
    """
    if density >= 1:
        return delta
    work = delta.float() if delta.dtype == torch.float16 else delta
    probs = torch.full_like(work, density)
    mask = torch.bernoulli(probs, generator=generator)
    kept = work * mask
    if rescale:
        before, after = work.abs().sum(), kept.abs().sum()
        if before >= 1e-7 and after >= 1e-7:
            kept = kept * (before / after)
    return kept.to(delta.dtype)


def majority_sign_mask(weighted: torch.Tensor) -> torch.Tensor:
    """TIES sign election by total mass: 1 where a delta's sign equals the sign of the column sum
    (zero sums count as positive), else 0. ``weighted`` is (K, n)."""
    majority = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0).to(weighted.dtype)
    return (weighted.sign() == majority).to(weighted.dtype)


def combine(
    deltas: torch.Tensor, weights: torch.Tensor, base: torch.Tensor, *, consensus: bool,
    normalize: bool, scale: float,
) -> torch.Tensor:
    """Weight, elect signs (optional), sum, normalise (optional), scale and add to the base.

    Args:
        deltas: (K, n) sparsified deltas.
        weights: (K,) weights.
        base: (n,) base values.
        consensus: Apply the TIES sign election.
        normalize: Divide by the sum of weights (masked where consensus applies).
        scale: The ``lambda`` factor.
    """
    w = weights.to(deltas.dtype).unsqueeze(1)  # (K, 1)
    weighted = deltas * w  # (K, n)
    if consensus:
        mask = majority_sign_mask(weighted)
        mixed = (weighted * mask).sum(dim=0)
        divisor = (w * mask).sum(dim=0)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(dim=0)
        divisor = w.sum(dim=0).expand_as(mixed).clone()
        divisor[divisor.abs() < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    if scale != 1:
        mixed = mixed * scale
    return (base + mixed).to(base.dtype)
