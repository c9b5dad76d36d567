"""Feasible mixtures: a box-constrained simplex, and slider moves that stay inside it.

A token budget (:mod:`demix_core.workspace.budget`) makes the feasible mixtures

    w_i x target <= max_epochs_i x available_i,   min_i <= w_i <= max_i,   sum_i w_i = 1,   w_i >= 0

that is, ``{sum 1, lo_i <= w_i <= hi_i}`` (:class:`Bounds`, built from a workspace by
:func:`demix_core.workspace.feasible.resolve_bounds`). Every search maps its proposals into it with
:meth:`Bounds.project` (the Euclidean projection, the identity on feasible points, so a feasible mixture's
Optuna parameters still map back to it), the recommendation ranks only feasible mixtures, and
:func:`slider_move` keeps the Mixer's sliders inside it (plain arithmetic on weights: no workspace here): the
one slider algorithm, bounded or not (the plain simplex is :meth:`Bounds.free`), exact on a ``10**-digits`` grid
when asked (:func:`grid_bounds` puts the bounds on it inwards, :func:`split_units` rounds inside them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from demix_core.errors import BudgetError
from demix_core.mixing.numbers import readable

TOLERANCE = 1e-9  # a weight this far past its bound still counts as inside (float rounding)
DIGITS = 4  # the sliders' grid: weights are multiples of 10**-DIGITS

@dataclass(frozen=True)
class Bounds:
    """The feasible mixtures ``{sum 1, lo_i <= w_i <= hi_i}`` and where each bound comes from.

    Attributes:
        names: Component names, in the workspace's order.
        lo: Lower bound per component (its min weight).
        hi: Upper bound per component: min(max weight, max_epochs x available / target).
        target_tokens: The target the epoch caps were computed for (``None``: no epoch caps apply).
        available: Available tokens per component's dataset (``None`` where unknown).
        max_epochs: Epoch cap per dataset (``None``: unlimited).
    """

    names: tuple[str, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    target_tokens: int | None = None
    available: tuple[int | None, ...] = ()
    max_epochs: tuple[float | None, ...] = ()

    @classmethod
    def free(cls, names: Sequence[str]) -> Bounds:
        """No constraint beyond the simplex."""
        k = len(names)
        return cls(tuple(names), (0.0,) * k, (1.0,) * k, None, (None,) * k, (None,) * k)

    @property
    def trivial(self) -> bool:
        """Whether these bounds are the plain simplex."""
        return all(v <= 0 for v in self.lo) and all(v >= 1 for v in self.hi)

    def lo_array(self) -> np.ndarray:
        return np.asarray(self.lo, dtype=np.float64)

    def hi_array(self) -> np.ndarray:
        return np.asarray(self.hi, dtype=np.float64)

    def feasible(self, weights: np.ndarray, *, tol: float = TOLERANCE) -> np.ndarray | bool:
        """Whether each row of ``weights`` (K,) or (n, K) sums to 1 and keeps every bound (to ``tol``)."""
        w = np.asarray(weights, dtype=np.float64)
        ok = ((w >= self.lo_array() - tol) & (w <= self.hi_array() + tol)).all(axis=-1)
        ok &= np.abs(w.sum(axis=-1) - 1.0) <= tol
        return bool(ok) if w.ndim == 1 else ok

    def project(self, weights: np.ndarray) -> np.ndarray:
        """The nearest feasible mixture (Euclidean) to each row of ``weights``; feasible rows come back unchanged.

        ``w_i = clip(x_i - tau, lo_i, hi_i)`` with ``tau`` found by bisection so that the row sums to 1; the last
        rounding residue goes to the component with the most room. Shape as given, (K,) or (n, K).
        """
        x = np.asarray(weights, dtype=np.float64)
        rows = np.atleast_2d(x).copy()
        lo, hi = self.lo_array(), self.hi_array()
        todo = ~np.asarray(self.feasible(rows, tol=1e-12), dtype=bool).reshape(-1)
        if todo.any():
            rows[todo] = _project_rows(rows[todo], lo, hi)
        return rows.reshape(x.shape)

    def mixture(self, weights: np.ndarray | Sequence[float]) -> Any:
        """The projected weights as a :class:`~demix_core.mixing.mixture.Mixture` (sum exactly renormalised)."""
        from demix_core.mixing.mixture import Mixture

        return Mixture.from_weights(self.names, self.project(np.asarray(weights, dtype=np.float64)).tolist())

    def check(self, mixture: Mapping[str, float]) -> None:
        """Raise for a mixture outside the bounds, naming the dataset that limits it and by how much.

        An epoch cap comes first: of the datasets the mixture repeats past their caps, the one with the largest
        need / cap (``w_i x target / available_i`` epochs against ``max_epochs_i``) is named, with the weight and
        the target that would fit it (that target fits the whole mixture). Then max and min weights, in order.

        Raises:
            BudgetError: One line: the dataset, its bound, where the bound comes from, and the fix.
        """
        over = self._repeated_past_caps(mixture)
        if over:
            raise BudgetError(self._repetition_message(over, float(mixture.get(self.names[over[0]], 0.0))))
        for name, lo, hi in zip(self.names, self.lo, self.hi):
            w = float(mixture.get(name, 0.0))
            if w > hi + TOLERANCE:
                raise BudgetError(f"dataset {name!r}: weight {w:.4g} is above its max weight {hi:.4g} by "
                                  f"{w - hi:.4g}; lower it or raise {name}'s max weight")
            if w < lo - TOLERANCE:
                raise BudgetError(f"dataset {name!r}: weight {w:.4g} is below its min weight {lo:.4g} by {lo - w:.4g}; "
                                  f"raise it or lower {name}'s min weight")

    def _repeated_past_caps(self, mixture: Mapping[str, float]) -> list[int]:
        """The datasets the mixture repeats past their epoch caps, the largest need / cap first."""
        target, ratios = self.target_tokens, {}
        for i, (name, avail, epochs) in enumerate(zip(self.names, self._avail(), self._epochs())):
            w = float(mixture.get(name, 0.0))
            if target and avail is not None and epochs is not None and w > epochs * avail / target + TOLERANCE:
                ratios[i] = w * target / avail / epochs
        return sorted(ratios, key=lambda i: -ratios[i])

    def _repetition_message(self, over: list[int], w: float) -> str:
        """The dataset ``over[0]`` (weight ``w``) repeated past its cap by this mixture: how far, and the fixes."""
        i = over[0]
        name, avail, epochs, target = self.names[i], int(self._avail()[i] or 0), float(self._epochs()[i] or 0), \
            int(self.target_tokens or 0)
        need, asked, held = w * target / avail, w * target, epochs * avail
        what = (f"dataset {name!r} would be repeated {readable(need)} times (cap {epochs:g} "
                f"epoch{'' if epochs == 1 else 's'}): this mixture asks {w:.4g} x {target:,} = {asked:,.0f} tokens of "
                f"its {avail:,}, over by {asked - held:,.0f} tokens")
        if len(over) > 1:
            what += f" (past their caps too: {', '.join(self.names[j] for j in over[1:])})"
        fits = math.floor(held / w)  # the largest target at which the whole mixture keeps every epoch cap
        allow = f", or allow {name} {readable(need, up=True)} epochs" if len(over) == 1 else ""
        if math.fsum(self.hi) < 1 - TOLERANCE:  # no mixture fits this target: lowering a weight cannot help
            return (what + f"; no mixture fits {target:,} target tokens at these caps (they allow "
                    f"{math.fsum(self.hi) * target:,.0f}), so lower the target tokens to {fits:,} for this "
                    f"mixture{allow}")
        return what + f"; lower {name}'s weight to {self.hi[i]:.4g} or the target tokens to {fits:,}{allow}"

    def _avail(self) -> tuple[int | None, ...]:
        return self.available or (None,) * len(self.names)

    def _epochs(self) -> tuple[float | None, ...]:
        return self.max_epochs or (None,) * len(self.names)

    def to_json(self) -> dict[str, Any]:
        """Plain data (a study stores its feasible set in its user attributes)."""
        return {"names": list(self.names), "lo": list(self.lo), "hi": list(self.hi),
                "target_tokens": self.target_tokens, "available": list(self._avail()),
                "max_epochs": list(self._epochs())}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, names: Sequence[str]) -> Bounds:
        """Read :meth:`to_json` back; ``None`` (a study made without a budget) gives the free simplex."""
        if not data:
            return cls.free(names)
        if list(data.get("names", [])) != list(names):
            raise BudgetError(f"the stored bounds are for {data.get('names')}, not {list(names)}; create the study "
                              "again for this workspace")
        return cls(tuple(names), tuple(float(v) for v in data["lo"]), tuple(float(v) for v in data["hi"]),
                   data.get("target_tokens"), tuple(data.get("available") or (None,) * len(names)),
                   tuple(data.get("max_epochs") or (None,) * len(names)))

    def describe(self) -> str:
        """One line per dataset: its range and where the upper bound comes from."""
        lines = []
        for name, lo, hi, avail, epochs in zip(self.names, self.lo, self.hi, self._avail(), self._epochs()):
            why = ""
            if self.target_tokens and avail is not None and epochs is not None:
                share = epochs * avail / self.target_tokens
                why = f" ({avail:,} tokens x {epochs:g} epochs = {share:.4g} of the target)"
            lines.append(f"{name:<12} {lo:.4f} .. {hi:.4f}{why}")
        return "\n".join(lines)


def _project_rows(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto {sum 1, lo <= w <= hi} (assumed non-empty), shape (n, K)."""
    x = np.where(np.isfinite(x), x, 0.0)
    a = (x - hi).min(axis=1) - 1.0  # sum(clip(x - a)) = sum(hi) >= 1
    b = (x - lo).max(axis=1) + 1.0  # sum(clip(x - b)) = sum(lo) <= 1
    for _ in range(100):
        mid = 0.5 * (a + b)
        s = np.clip(x - mid[:, None], lo, hi).sum(axis=1)
        big = s > 1.0
        a = np.where(big, mid, a)
        b = np.where(big, b, mid)
        if np.all(b - a <= 1e-15 * np.maximum(1.0, np.abs(a))):
            break
    w = np.clip(x - (0.5 * (a + b))[:, None], lo, hi)
    for r in range(len(w)):  # the rounding residue (~1e-16) to the component with the most room that way
        res = 1.0 - math.fsum(w[r])
        room = (hi - w[r]) if res > 0 else (w[r] - lo)
        i = int(np.argmax(room))
        w[r, i] = min(hi[i], max(lo[i], w[r, i] + res))
    return w


def mixture_from_trial_params(names: Sequence[str], params: Mapping[str, float], bounds: Bounds | None) -> Any:
    """A trial's mixture: Optuna's draws mapped to the simplex (flat Dirichlet), then onto the feasible set.

    The one mapping every worker and sampler uses, so a trial's parameters always name the mixture it
    evaluated; a feasible mixture enqueued with :func:`~demix_core.mixing.mixture.params_from_mixture` maps back
    to itself.
    """
    from demix_core.mixing.mixture import mixture_from_params

    mix = mixture_from_params(names, params)
    if bounds is None or bounds.trivial:
        return mix
    return bounds.mixture(mix.array())


# --- sliders (the Mixer) ------------------------------------------------------------------------


def slider_ranges(weights: Mapping[str, float], locked: Iterable[str],
                  bounds: Bounds) -> dict[str, tuple[float, float]]:
    """How far each slider may go with the other sliders free to absorb the change (locked ones held).

    For component i: ``[max(lo_i, 1 - L - sum hi_free), min(hi_i, 1 - L - sum lo_free)]`` where ``L`` sums the
    locked weights other than i and ``free`` are the other unlocked components. A locked slider's range is its
    value. These are the bounds to draw on each slider.
    """
    held = set(locked)
    index = {n: i for i, n in enumerate(bounds.names)}
    out = {}
    for n in weights:
        if n in held:
            out[n] = (float(weights[n]), float(weights[n]))
            continue
        others_locked = math.fsum(float(weights[m]) for m in weights if m != n and m in held)
        free = [index[m] for m in weights if m != n and m not in held]
        lo_i, hi_i = bounds.lo[index[n]], bounds.hi[index[n]]
        low = max(lo_i, 1 - others_locked - math.fsum(bounds.hi[j] for j in free))
        high = min(hi_i, 1 - others_locked - math.fsum(bounds.lo[j] for j in free))
        out[n] = (max(0.0, low), max(max(0.0, low), high))
    return out


def slider_move(weights: Mapping[str, float], moved: str, locked: Iterable[str], bounds: Bounds, *,
                digits: int | None = None) -> dict[str, float]:
    """Feasible weights after one slider moved: the moved value is clamped to its range, locked weights stay,
    and the free ones take the rest in proportion to their current values (equally when all are 0), moved
    onto their own bounds by the Euclidean projection when the proportional split would cross one.

    Args:
        weights: Every component's weight, ``moved`` already at its requested value.
        moved: The component whose slider moved.
        locked: Components whose weights must not change (``moved`` is ignored here).
        bounds: The feasible set (:meth:`Bounds.free`: the plain simplex).
        digits: Put the result on the ``10**-digits`` grid (see :func:`grid_move`); None: exact floats.

    Returns:
        Weights in the order of ``weights``: they sum to 1 (to ~1e-15; exactly in grid units with ``digits``) and
        keep every bound.

    Raises:
        BudgetError: An unknown name, or locked weights that leave no feasible completion.
    """
    if digits is not None:
        return grid_move(weights, moved, locked, bounds, digits=digits)
    unknown = [n for n in (moved, *locked) if n not in bounds.names] + [n for n in weights if n not in bounds.names]
    if unknown:
        raise BudgetError(f"unknown component {unknown[0]!r}; choose one of {', '.join(bounds.names)}")
    held = {n for n in locked if n != moved}
    index = {n: i for i, n in enumerate(bounds.names)}
    out = {n: float(weights.get(n, 0.0)) for n in bounds.names}
    for n in held:  # a locked weight outside its own bounds is brought inside them first
        out[n] = min(max(out[n], bounds.lo[index[n]]), bounds.hi[index[n]])
    low, high = slider_ranges(out, held, bounds)[moved]
    out[moved] = min(max(out[moved], low), high)
    free = [n for n in bounds.names if n != moved and n not in held]
    rest = 1.0 - out[moved] - math.fsum(out[n] for n in held)
    if not free:
        if abs(rest) > TOLERANCE:
            raise BudgetError(f"every other weight is locked, so {moved!r} must be {out[moved] + rest:.4g}, outside "
                              f"its range {low:.4g}..{high:.4g}; unlock a slider")
        out[moved] += rest
        return {n: out[n] for n in weights}
    lo = np.array([bounds.lo[index[n]] for n in free])
    hi = np.array([bounds.hi[index[n]] for n in free])
    if math.fsum(lo) > rest + TOLERANCE or math.fsum(hi) < rest - TOLERANCE:
        raise BudgetError(f"the locked weights leave {rest:.4g} for {', '.join(free)}, outside what their bounds allow "
                          f"({math.fsum(lo):.4g}..{math.fsum(hi):.4g}); unlock a slider")
    current = np.array([out[n] for n in free])
    share = current / current.sum() if current.sum() > 0 else np.full(len(free), 1.0 / len(free))
    if rest <= 0:
        part = lo.copy()
    else:
        part = _project_rows(share[None, :], lo / rest, hi / rest)[0] * rest  # the split, scaled to sum 1
    for n, v in zip(free, part):
        out[n] = float(v)
    res = 1.0 - math.fsum(out.values())  # the last ~1e-16 of rounding, to the free weight with the most room
    j = max(free, key=lambda n: (bounds.hi[index[n]] - out[n]) if res > 0 else (out[n] - bounds.lo[index[n]]))
    out[j] += res
    return {n: out[n] for n in weights}


def grid_move(weights: Mapping[str, float], moved: str, locked: Iterable[str], bounds: Bounds, *,
              digits: int = DIGITS) -> dict[str, float]:
    """:func:`slider_move` on the ``10**-digits`` grid: every weight a multiple of ``10**-digits``, the units summing
    to exactly ``10**digits``, every bound kept (the bounds are put on the grid inwards by :func:`grid_bounds`).

    The move runs on the grid bounds; locked weights keep their units, the moved weight is clamped to its range (a
    grid value, as every bound and locked weight is on the grid; when every other weight is locked it takes what
    they leave), and the free weights share the units left in proportion to their current values, computed in units
    (equally when all are 0), or, when that split would cross a bound, as :func:`slider_move` projects it; the
    split is rounded by largest remainder (ties to the first component) within each one's bounds, to exactly the
    units left (:func:`split_units`).

    Raises:
        BudgetError: An unknown name, bounds with no mixture on the grid, or locks that leave no completion.
    """
    scale = 10 ** digits
    grid = grid_bounds(bounds, digits=digits)
    held = {n for n in locked if n != moved}
    new = slider_move(weights, moved, held, grid)
    lo_u, hi_u = grid_limits(grid, digits=digits)
    index = {n: i for i, n in enumerate(grid.names)}
    units = {n: round(new[n] * scale) for n in grid.names if n in held}
    free = [n for n in grid.names if n != moved and n not in held]
    rest = scale - sum(units.values())
    i = index[moved]
    units[moved] = rest if not free else min(hi_u[i], max(lo_u[i], round(new[moved] * scale)))
    if free:
        lo_f, hi_f, left = [lo_u[index[n]] for n in free], [hi_u[index[n]] for n in free], rest - units[moved]
        current = [max(0.0, float(weights.get(n, 0.0))) for n in free]
        total = math.fsum(current)
        ideal = [c * left / total for c in current] if total > 0 else [left / len(free)] * len(free)
        if not all(a <= v <= b for v, a, b in zip(ideal, lo_f, hi_f)):  # a bound binds: the projected split
            ideal = [new[n] * scale for n in free]
        units.update(zip(free, split_units(ideal, lo_f, hi_f, left)))
    return {n: units[n] / scale for n in weights}


def grid_bounds(bounds: Bounds, *, digits: int = DIGITS) -> Bounds:
    """``bounds`` on the ``10**-digits`` grid: each lower bound rounded up and each upper bound rounded down to a
    multiple of ``10**-digits`` (a float within ``1e-6`` units of a multiple counts as that multiple), so every grid
    mixture inside the result is inside ``bounds``. A budget bound such as ``0.40003`` becomes ``0.4``.

    Raises:
        BudgetError: No mixture on the grid keeps the bounds (a range narrower than one unit between two grid
            points, or grid bounds that no longer reach a sum of 1): one line naming the dataset or the sums.
    """
    scale = 10 ** digits
    lo = [math.ceil(v * scale - 1e-6) for v in bounds.lo]
    hi = [min(scale, math.floor(v * scale + 1e-6)) for v in bounds.hi]
    lo = [max(0, v) for v in lo]
    for n, a, b, x, y in zip(bounds.names, lo, hi, bounds.lo, bounds.hi):
        if a > b:
            raise BudgetError(f"dataset {n!r}: its range {x:.6g}..{y:.6g} holds no weight on the 1e-{digits} grid "
                              "of the sliders; widen its min/max weight or epoch cap")
    if sum(lo) > scale or sum(hi) < scale:
        raise BudgetError(f"on the 1e-{digits} grid of the sliders the bounds sum to {sum(lo) / scale:.{digits}f}.."
                          f"{sum(hi) / scale:.{digits}f}, which leaves no mixture summing to 1; loosen the budget a "
                          "little")
    return Bounds(bounds.names, tuple(v / scale for v in lo), tuple(v / scale for v in hi), bounds.target_tokens,
                  bounds.available, bounds.max_epochs)


def grid_limits(grid: Bounds, *, digits: int = DIGITS) -> tuple[list[int], list[int]]:
    """Bounds already on the ``10**-digits`` grid (:func:`grid_bounds`) as integer units: (lower, upper)."""
    scale = 10 ** digits
    return [round(v * scale) for v in grid.lo], [round(v * scale) for v in grid.hi]


def split_units(ideal: Sequence[float], lo: Sequence[int], hi: Sequence[int], total: int) -> list[int]:
    """Integers ``lo_i <= u_i <= hi_i`` summing to ``total``, each as near its ``ideal`` as that allows:
    floors first, then the units still missing to the largest remainders (or the units over taken back from the
    smallest) among those with room. Needs ``sum(lo) <= total <= sum(hi)``.

    Raises:
        BudgetError: ``total`` lies outside ``sum(lo)..sum(hi)``.
    """
    if not sum(lo) <= total <= sum(hi):
        raise BudgetError(f"{total} units cannot be split within the bounds {list(lo)}..{list(hi)}")
    out = [min(h, max(a, math.floor(v + 1e-9))) for v, a, h in zip(ideal, lo, hi)]
    left = total - sum(out)
    while left:
        step = 1 if left > 0 else -1
        room = [i for i in range(len(out)) if (out[i] < hi[i] if step > 0 else out[i] > lo[i])]
        i = max(room, key=lambda j: (step * (ideal[j] - out[j]), -j))
        out[i] += step
        left -= step
    return out


