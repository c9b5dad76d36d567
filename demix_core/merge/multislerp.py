"""Multi-SLERP: barycentric interpolation on the hypersphere, per parameter tensor.

Each vector (a component's tensor, or its delta from the base when a base is given) is projected onto
the unit sphere; their weighted mean direction is the tangent point; the weighted tangent vectors are
mapped back with the exponential map; the result is scaled by the weighted mean norm and the base, if
any, is added back. One component is returned as is.

Reference: C. Goddard, "Multi-SLERP" (2024); mergekit 0.1.5's ``multislerp`` (base optional,
``normalize_weights`` true, ``eps`` 1e-8). One deliberate difference: when every vector is (near) zero —
a tensor no component changed from the base — mergekit raises; we return the base (the only sensible
barycentre of zero deltas). Antipodal directions with cancelling weights are an error in both.
"""

from __future__ import annotations

import torch

from demix_core.errors import MergeError
from demix_core.merge.registry import MergeMethod, ParamDef, register


@register
class MultiSlerp(MergeMethod):
    """Spherical barycentre of the components (or of their task vectors when a base is given)."""

    name = "multislerp"
    optional_base = True
    reference = "Goddard 2024, Multi-SLERP (goddard.blog/posts/multislerp-wow-what-a-cool-idea)"
    params = (ParamDef("eps", 1e-8, 0.0, 1e-2, "numerical floor for norms"),)
    mergekit_globals = {"normalize_weights": True}

    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        eps = self.values["eps"]
        if len(stack) == 1:
            return stack[0]
        vecs = stack - base if base is not None else stack  # (K, n)
        w = weights.to(vecs.dtype)
        w = w / w.sum()  # (K,) cast first, then normalise, as mergekit does
        norms = vecs.norm(dim=1, keepdim=True)  # (K, 1)
        if bool((norms <= eps).all()):
            return base.clone() if base is not None else torch.zeros_like(vecs[0])
        unit = vecs / (norms + eps)  # (K, n)
        mean = (unit * w[:, None]).sum(0)  # (n,)
        mean_norm = mean.norm()
        if mean_norm < eps:
            if len(vecs) == 2:  # two antipodal vectors: fall back to linear interpolation
                out = vecs[0] * w[0] + vecs[1] * w[1]
                return out + base if base is not None else out
            raise MergeError("multislerp: the weighted directions cancel out (antipodal tensors); "
                             "change the weights or use linear")
        mean = mean / mean_norm
        tangent = unit - (unit * mean).sum(1, keepdim=True) * mean  # (K, n) projections onto the tangent space
        t = (tangent * w[:, None]).sum(0)  # (n,)
        t_norm = t.norm() + eps
        out = mean * torch.cos(t_norm) + t * (torch.sin(t_norm) / t_norm)  # exponential map
        out = out * (norms.squeeze(1) * w).sum()
        return out + base if base is not None else out
