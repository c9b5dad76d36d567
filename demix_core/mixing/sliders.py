"""The Mixer's slider arithmetic without a screen: one exact record of the mixture being tuned.

:class:`SliderState` holds integer units of ``1e-4`` that sum to exactly ``10_000`` after any sequence of
slider, number and lock changes, and that keep a token budget's bounds (:class:`~demix_core.mixing.bounds.Bounds`)
when it has one: :func:`grid_bounds` puts the bounds on the grid (lower bounds rounded up, upper bounds
down, so every grid mixture inside them is inside the budget), a move is
:func:`~demix_core.mixing.bounds.slider_move` on those bounds, and :func:`_bounded_units` rounds its result
to units without leaving them. Widgets are views of it: the page writes a widget's value only when it
differs from the state (so the slider being moved is never pushed back under the user's finger), and a
browser that reports a value the page had just replaced (a stale echo of another widget, sent with the
newest key press) does not move the mixture.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from demix_core.errors import BudgetError, MixtureError
from demix_core.mixing.bounds import Bounds, slider_move, slider_ranges
from demix_core.mixing.mixture import Mixture, grid_units, rebalance
from demix_core.mixing.pairs import format_pairs

DIGITS = 4
SCALE = 10 ** DIGITS
ECHOES = 8  # values of a widget the page replaced recently, recognised as stale echoes

class SliderState:
    """The mixture on the Mixer's sliders: integer units of ``10**-DIGITS`` summing to ``10**DIGITS``.

    Widgets report what they show (:meth:`report`, from their change callbacks); :meth:`apply` turns the
    reports of one rerun into at most a few moves. A browser sends every widget's value with each change,
    so a widget whose replacement it had not drawn yet reports its old value beside the widget the user
    moved: when one rerun reports several changes, a value that the page recently replaced in that widget
    is such a stale echo and is dropped. A single reported change is always the user's.

    Args:
        names: Component names, in the workspace's order.
        weights: Start weights (any non-negative values; normalised and put on the grid), default equal.
        bounds: A token budget's feasible set (see :meth:`set_bounds`); ``None``: the plain simplex.
    """

    def __init__(self, names: Sequence[str], weights: Mapping[str, float] | None = None,
                 bounds: Bounds | None = None) -> None:
        self.names = tuple(names)
        if not self.names:
            raise MixtureError("a mixture needs at least one component")
        units = grid_units(weights if weights is not None else {n: 1.0 for n in self.names}, digits=DIGITS)
        if sorted(units) != sorted(self.names):
            raise MixtureError(f"weights name {sorted(units)}, not the components {list(self.names)}")
        self.units = {n: units[n] for n in self.names}
        self.bounds: Bounds | None = None  # on the grid (grid_bounds); None: the plain simplex
        self.replaced: dict[tuple[str, str], deque[int]] = {}  # (widget kind, name) -> values the page replaced
        self.pending: list[tuple[str, str, float]] = []
        self.changed_at = time.perf_counter()  # when the mixture last changed (the page times its scores from it)
        self.reported_at = self.changed_at  # when the first pending report came in
        self.version = 0
        if bounds is not None:
            self.set_bounds(bounds)

    def set_bounds(self, bounds: Bounds | None) -> bool:
        """Keep the mixture inside ``bounds`` from now on (``None`` or trivial bounds: the plain simplex).

        The bounds are put on the grid (:func:`grid_bounds`); a mixture outside them is moved to the nearest one
        inside (Euclidean projection, then rounded to units inside the bounds). Returns whether it moved.

        Raises:
            BudgetError: The bounds are for other components, or leave no mixture on the ``1e-4`` grid.
        """
        if bounds is None or bounds.trivial:
            self.bounds = None
            return False
        if tuple(bounds.names) != self.names:
            raise BudgetError(f"the bounds are for {list(bounds.names)}, not the components {list(self.names)}")
        grid = grid_bounds(bounds)
        if grid == self.bounds:
            return False
        self.bounds = grid
        units = [self.units[n] for n in self.names]
        lo_u, hi_u = _grid_limits(grid)
        if all(a <= u <= b for u, a, b in zip(units, lo_u, hi_u)):
            return False
        target = grid.project(np.asarray(units, dtype=np.float64) / SCALE) * SCALE
        return self.set_units(dict(zip(self.names, _bounded_units(target.tolist(), lo_u, hi_u, SCALE))))

    def ranges(self, locked: Iterable[str] = ()) -> dict[str, tuple[float, float]]:
        """How far each slider may go now (:func:`~demix_core.mixing.bounds.slider_ranges` on the grid bounds; the plain
        simplex's ranges without bounds): ``{name: (low, high)}``, a locked slider's range being its value."""
        return slider_ranges(self.weights(), [n for n in locked if n in self.units],
                             self.bounds or Bounds.free(self.names))

    def weight(self, name: str) -> float:
        """One component's weight (exact at ``DIGITS`` decimals)."""
        return self.units[name] / SCALE

    def weights(self) -> dict[str, float]:
        """``{name: weight}``; the weights sum to 1 (to within float rounding, < 1e-12)."""
        return {n: u / SCALE for n, u in self.units.items()}

    def mixture(self) -> Mixture:
        """The state as a :class:`Mixture`."""
        return Mixture.from_weights(self.names, [self.units[n] for n in self.names])

    def text(self) -> str:
        """``a=0.2500,b=0.7500``: the link form (exact, every component)."""
        return format_pairs(self.weights(), digits=DIGITS)

    def report(self, kind: str, name: str, value: float | None) -> None:
        """A widget (``kind``: slider, number...) of component ``name`` now shows ``value``."""
        if value is not None:
            if not self.pending:
                self.reported_at = time.perf_counter()
            self.pending.append((kind, name, float(value)))

    def apply(self, locked: Iterable[str] = ()) -> bool:
        """Apply this rerun's reports (see the class); return whether the mixture changed.

        Raises:
            MixtureError: A reported or locked name is not a component.
        """
        reports, self.pending = self.pending, []
        changes = [(kind, name, _units(value)) for kind, name, value in reports
                   if name not in self.units or _units(value) != self.units[name]]
        if len(changes) > 1:
            fresh = [c for c in changes if c[2] not in self.replaced.get((c[0], c[1]), ())]
            changes = fresh or changes[-1:]
        moved = False
        for kind, name, units in changes:
            self.replaced.pop((kind, name), None)  # the user moved this widget: its history describes no echo
            moved = self.move(name, units / SCALE, locked) or moved
        if moved:
            self.changed_at = self.reported_at  # scores are timed from the widget's change, not from here
        return moved

    def move(self, name: str, value: float, locked: Iterable[str] = ()) -> bool:
        """Set ``name`` to ``value`` (rounded to the grid) and rebalance the others, locks kept.

        Returns:
            Whether the mixture changed.

        Raises:
            MixtureError: ``name`` or a locked name is not a component.
        """
        if name not in self.units:
            raise MixtureError(f"unknown component {name!r}; choose one of {', '.join(self.names)}")
        if self.bounds is not None:
            return self.set_units(self._bounded_move(name, _units(value), list(locked)))
        new = rebalance({**self.weights(), name: _units(value) / SCALE}, name, list(locked), digits=DIGITS)
        return self.set_units({n: round(w * SCALE) for n, w in new.items()})

    def _bounded_move(self, name: str, units: int, locked: list[str]) -> dict[str, int]:
        """:func:`~demix_core.mixing.bounds.slider_move` on the grid bounds, rounded to units that keep them.

        The moved weight is clamped to its range (a grid value, as every bound and locked weight is on the grid),
        locked units stay as they are, and the free weights' unrounded split is rounded by largest remainder within
        each one's bounds, to exactly the units left: the sum is ``10**DIGITS`` and every bound holds.
        """
        assert self.bounds is not None
        unknown = [n for n in locked if n not in self.units]
        if unknown:
            raise MixtureError(f"unknown component {unknown[0]!r}; choose one of {', '.join(self.names)}")
        held = [n for n in self.names if n != name and n in set(locked)]
        new = slider_move({**self.weights(), name: units / SCALE}, name, held, self.bounds)
        lo_u, hi_u = _grid_limits(self.bounds)
        index = {n: i for i, n in enumerate(self.names)}
        out = {n: self.units[n] for n in held}
        free = [n for n in self.names if n != name and n not in held]
        rest = SCALE - sum(out.values())
        i = index[name]
        out[name] = rest if not free else min(hi_u[i], max(lo_u[i], round(new[name] * SCALE)))
        if free:
            shares = _bounded_units([new[n] * SCALE for n in free], [lo_u[index[n]] for n in free],
                                    [hi_u[index[n]] for n in free], rest - out[name])
            out.update(zip(free, shares))
        return out

    def set_units(self, units: Mapping[str, int]) -> bool:
        """Replace the mixture (units summing to ``10**DIGITS``); return whether it changed."""
        if sorted(units) != sorted(self.names) or sum(units.values()) != SCALE or min(units.values()) < 0:
            raise MixtureError(f"units {dict(units)} do not put every component on the simplex")
        if all(units[n] == self.units[n] for n in self.names):
            return False
        self.units = {n: int(units[n]) for n in self.names}
        self.changed_at = time.perf_counter()
        self.version += 1
        return True

    def sync(self, kind: str, shown: Mapping[str, float | None]) -> dict[str, float]:
        """The values to write into the ``kind`` widgets so that they agree with the state.

        Only widgets that disagree are returned (a widget in step is never written, so a slider being dragged
        is not pushed back); each replaced value is remembered to recognise its stale echo later.

        Args:
            kind: The widget kind (slider, number...).
            shown: ``{name: value}`` the widgets hold now (None: the widget does not exist yet).
        """
        out = {}
        for n, value in shown.items():
            if value is None or _units(value) != self.units[n]:
                if value is not None:
                    self.replaced.setdefault((kind, n), deque(maxlen=ECHOES)).append(_units(value))
                out[n] = self.units[n] / SCALE
        return out


def _units(value: float) -> int:
    return min(SCALE, max(0, round(float(value) * SCALE)))


def grid_bounds(bounds: Bounds) -> Bounds:
    """``bounds`` on the ``10**-DIGITS`` grid: each lower bound rounded up and each upper bound rounded down to a
    multiple of ``1e-4`` (a float within ``1e-6`` units of a multiple counts as that multiple), so every grid
    mixture inside the result is inside ``bounds``. A budget bound such as ``0.40003`` becomes ``0.4``.

    Raises:
        BudgetError: No mixture on the grid keeps the bounds (a range narrower than ``1e-4`` between two grid
            points, or grid bounds that no longer reach a sum of 1): one line naming the dataset or the sums.
    """
    lo = [math.ceil(v * SCALE - 1e-6) for v in bounds.lo]
    hi = [min(SCALE, math.floor(v * SCALE + 1e-6)) for v in bounds.hi]
    lo = [max(0, v) for v in lo]
    for n, a, b, x, y in zip(bounds.names, lo, hi, bounds.lo, bounds.hi):
        if a > b:
            raise BudgetError(f"dataset {n!r}: its range {x:.6g}..{y:.6g} holds no weight on the 1e-{DIGITS} grid "
                              "of the sliders; widen its min/max weight or epoch cap")
    if sum(lo) > SCALE or sum(hi) < SCALE:
        raise BudgetError(f"on the 1e-{DIGITS} grid of the sliders the bounds sum to {sum(lo) / SCALE:.4f}.."
                          f"{sum(hi) / SCALE:.4f}, which leaves no mixture summing to 1; loosen the budget a little")
    return Bounds(bounds.names, tuple(v / SCALE for v in lo), tuple(v / SCALE for v in hi), bounds.target_tokens,
                  bounds.available, bounds.max_epochs)


def _grid_limits(grid: Bounds) -> tuple[list[int], list[int]]:
    """The grid bounds as integer units."""
    return [round(v * SCALE) for v in grid.lo], [round(v * SCALE) for v in grid.hi]


def _bounded_units(ideal: Sequence[float], lo: Sequence[int], hi: Sequence[int], total: int) -> list[int]:
    """Integers ``lo_i <= u_i <= hi_i`` summing to ``total``, each as near its ``ideal`` as that allows:
    floors first, then the units still missing to the largest remainders (or the units over taken back from the
    smallest) among those with room. Needs ``sum(lo) <= total <= sum(hi)``."""
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


