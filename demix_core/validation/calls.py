"""Per-domain calls of the loop: is the trained recommendation better than a baseline on a domain, beyond noise?

For one domain, the difference is the recommendation's mean score over its trained seeds minus the baseline's.
Its 95% interval comes from the noise floor (the pooled seed sd ``F`` with ``df`` degrees of freedom, see
:mod:`demix_core.validation.noise`): ``difference +- t(0.975, df) * F * sqrt(1/n_rec + 1/n_base)`` for means over
``n_rec`` and ``n_base`` seeds. The call is ``better`` (or ``worse``) only when the difference exceeds the floor
*and* its interval excludes 0; otherwise ``within noise``. Without a floor the call is ``noise unknown``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from demix_core.validation.noise import UNKNOWN, WITHIN, noise_call


def difference_interval(difference: float, floor: float | None, n_a: int = 1, n_b: int = 1,
                        df: int | None = None) -> tuple[float, float] | None:
    """The 95% interval of a difference of two means over ``n_a`` and ``n_b`` seeds with seed sd ``floor`` (its
    ``df`` degrees of freedom give Student's t; None: the normal 1.96); None without a floor."""
    if floor is None:
        return None
    from scipy.stats import norm, t

    q = float(t.ppf(0.975, df)) if df else float(norm.ppf(0.975))
    half = q * float(floor) * math.sqrt(1.0 / max(n_a, 1) + 1.0 / max(n_b, 1))
    return difference - half, difference + half


def domain_call(difference: float, floor: float | None, interval: tuple[float, float] | None) -> str:
    """``better`` / ``worse`` when the difference exceeds the floor and its interval excludes 0, else ``within
    noise``; ``noise unknown`` without a floor."""
    call = noise_call(difference, floor)
    if call in (WITHIN, UNKNOWN) or interval is None:
        return call
    return call if interval[0] > 0 or interval[1] < 0 else WITHIN


def domain_calls(recommended: Mapping[str, float], baseline: Mapping[str, float],
                 floor: Mapping[str, float] | None, *, repeats: tuple[int, int] = (1, 1),
                 df: int | None = None) -> dict[str, dict[str, Any]]:
    """Per domain: the recommendation's score minus the baseline's, that domain's floor (None: unknown), the 95%
    interval (``low``/``high``, None when unknown) and the call.

    Args:
        recommended: The recommendation's (mean) score per domain.
        baseline: The baseline's.
        floor: Domain -> seed sd.
        repeats: How many seeds each mean is over (recommendation, baseline).
        df: The floor's degrees of freedom.
    """
    out: dict[str, dict[str, Any]] = {}
    for d, value in recommended.items():
        diff = float(value) - float(baseline[d])
        sd = None if floor is None or d not in floor else float(floor[d])
        ci = difference_interval(diff, sd, repeats[0], repeats[1], df)
        out[d] = {"difference": diff, "floor": sd, "call": domain_call(diff, sd, ci),
                  "low": None if ci is None else ci[0], "high": None if ci is None else ci[1]}
    return out


def call_figure(call: Mapping[str, Any]) -> str:
    """A difference with its interval: ``+0.041 [+0.020, +0.062]`` (``+0.041`` without a floor)."""
    ci = "" if call.get("low") is None else f" [{call['low']:+.3f}, {call['high']:+.3f}]"
    return f"{call['difference']:+.3f}{ci}"


def call_text(call: Mapping[str, Any] | None) -> str:
    """One per-domain call, compact: ``+0.041 [+0.020, +0.062] better`` (``+0.041 noise unknown`` without a floor;
    ``""`` for none)."""
    return f"{call_figure(call)} {call['call']}" if call else ""


def calls_sentence(role: str, calls: Mapping[str, Mapping[str, Any]]) -> str:
    """``beats natural by +0.041 [+0.020, +0.062] on code and +0.05 [+0.01, +0.09] on math; within noise on general
    (floor 0.002)``: the domains grouped by their call."""
    fig = call_figure

    def group(call: str) -> list[str]:
        return [d for d, c in calls.items() if c["call"] == call]

    parts = []
    for call, lead in (("better", f"beats {role} by"), ("worse", f"loses to {role} by")):
        ds = group(call)
        if ds:
            parts.append(f"{lead} " + " and ".join(f"{fig(calls[d])} on {d}" for d in ds))
    within = group(WITHIN)
    if within:
        parts.append("within noise on " + ", ".join(f"{d} ({fig(calls[d])}, floor {calls[d]['floor']:.3g})"
                                                    for d in within))
    unknown = group(UNKNOWN)
    if unknown:
        parts.append("noise unknown on " + ", ".join(f"{d} ({fig(calls[d])})" for d in unknown))
    if not group("better") and not group("worse"):
        parts[0] = f"against {role}: {parts[0]}" if parts else f"against {role}: no domain"
    return "; ".join(parts)
