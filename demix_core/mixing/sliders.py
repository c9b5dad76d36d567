"""The Mixer's slider arithmetic without a screen: one exact record of the mixture being tuned.

:class:`SliderState` holds integer units of ``1e-4`` that sum to exactly ``10_000`` after any sequence of
slider, number and lock changes, and that keep a token budget's bounds (:class:`~demix_core.mixing.bounds.Bounds`)
when it has one: :func:`~demix_core.mixing.bounds.grid_bounds` puts the bounds on the grid (lower bounds rounded
up, upper bounds down, so every grid mixture inside them is inside the budget), and a move is the one slider
algorithm, :func:`~demix_core.mixing.bounds.slider_move` on that grid (the plain simplex is bounds [0, 1]).
Widgets are views of it: the page writes a widget's value only when it differs from the state (so the slider
being moved is never pushed back under the user's finger), and a browser that reports a value the page had just
replaced (a stale echo of another widget, sent with the newest key press) does not move the mixture.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from demix_core.errors import BudgetError, MixtureError
from demix_core.mixing.bounds import DIGITS, Bounds, grid_bounds, grid_limits, slider_move, slider_ranges, split_units
from demix_core.mixing.mixture import Mixture, grid_units
from demix_core.mixing.pairs import format_pairs

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
        lo_u, hi_u = grid_limits(grid)
        if all(a <= u <= b for u, a, b in zip(units, lo_u, hi_u)):
            return False
        target = grid.project(np.asarray(units, dtype=np.float64) / SCALE) * SCALE
        return self.set_units(dict(zip(self.names, split_units(target.tolist(), lo_u, hi_u, SCALE))))

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
        """Set ``name`` to ``value`` (rounded to the grid) and rebalance the others, locks kept: the one slider
        algorithm, :func:`~demix_core.mixing.bounds.slider_move` on the grid (see
        :func:`~demix_core.mixing.bounds.grid_move`), within the bounds or on the plain simplex.

        Returns:
            Whether the mixture changed.

        Raises:
            MixtureError: ``name`` or a locked name is not a component.
        """
        if name not in self.units:
            raise MixtureError(f"unknown component {name!r}; choose one of {', '.join(self.names)}")
        new = slider_move({**self.weights(), name: _units(value) / SCALE}, name, list(locked),
                          self.bounds or Bounds.free(self.names), digits=DIGITS)
        return self.set_units({n: round(w * SCALE) for n, w in new.items()})

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
