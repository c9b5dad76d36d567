"""Token budgets: what a mixture may ask of the data the team really has.

A workspace's ``budget:`` (in ``demix.yaml``) holds a target number of training tokens and, per
component's dataset, its available tokens (measured with the workspace tokenizer, or declared for
data trained elsewhere), a maximum number of epochs (repetitions), and optional min / max weights.
The feasible mixtures are

    w_i x target <= max_epochs_i x available_i,   min_i <= w_i <= max_i,   sum_i w_i = 1,   w_i >= 0

that is, a box-constrained simplex ``{sum 1, lo_i <= w_i <= hi_i}`` (:class:`Bounds`). Every search maps
its proposals into it with :meth:`Bounds.project` (the Euclidean projection, the identity on feasible
points, so a feasible mixture's Optuna parameters still map back to it), the recommendation ranks only
feasible mixtures, and :func:`slider_move` keeps the Mixer's sliders inside it.

Manifest keys (all optional)::

    budget:
      target_tokens: 2000000        # training tokens of the run the mixture is for
      max_epochs: 4                 # default cap for every dataset (none: unlimited)
      datasets:                     # keyed by component name (each component stands for its dataset)
        code: {max_epochs: 2, min_weight: 0.05, max_weight: 0.5, available_tokens: 1200000}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from demix_core.errors import BudgetError, WorkspaceError

if TYPE_CHECKING:
    from demix_core.workspace import Workspace

TOLERANCE = 1e-9  # a weight this far past its bound still counts as inside (float rounding)
_DATASET_KEYS = ("max_epochs", "min_weight", "max_weight", "available_tokens")


@dataclass(frozen=True)
class DatasetBudget:
    """One dataset's limits. ``None`` leaves a limit to the budget's default (epochs) or the data (tokens)."""

    max_epochs: float | None = None
    min_weight: float = 0.0
    max_weight: float = 1.0
    available_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as manifest data (defaults left out)."""
        out: dict[str, Any] = {}
        if self.max_epochs is not None:
            out["max_epochs"] = self.max_epochs
        if self.min_weight:
            out["min_weight"] = self.min_weight
        if self.max_weight != 1.0:
            out["max_weight"] = self.max_weight
        if self.available_tokens is not None:
            out["available_tokens"] = self.available_tokens
        return out


@dataclass(frozen=True)
class Budget:
    """The manifest's ``budget:`` section, parsed and checked (types and ranges; feasibility needs the
    workspace: :func:`resolve_bounds`)."""

    target_tokens: int | None = None
    max_epochs: float | None = None
    datasets: Mapping[str, DatasetBudget] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the budget constrains nothing."""
        return self.target_tokens is None and not any(d.to_dict() for d in self.datasets.values()) \
            and self.max_epochs is None

    def entry(self, name: str) -> DatasetBudget:
        """The limits of one dataset (defaults when it has no entry)."""
        return self.datasets.get(name, DatasetBudget())

    def epochs_of(self, name: str) -> float | None:
        """A dataset's epoch cap: its own, else the budget's default, else ``None`` (unlimited)."""
        own = self.entry(name).max_epochs
        return own if own is not None else self.max_epochs

    def to_dict(self) -> dict[str, Any]:
        """The section as manifest data."""
        out: dict[str, Any] = {}
        if self.target_tokens is not None:
            out["target_tokens"] = self.target_tokens
        if self.max_epochs is not None:
            out["max_epochs"] = self.max_epochs
        entries = {n: d.to_dict() for n, d in self.datasets.items() if d.to_dict()}
        if entries:
            out["datasets"] = entries
        return out

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "budget") -> Budget:
        """Parse the manifest's section.

        Raises:
            WorkspaceError: A wrong type or an out-of-range value, naming the key.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise WorkspaceError(f"{where} is {data!r}; it must be a mapping with target_tokens, max_epochs, datasets")
        unknown = sorted(str(k) for k in data if k not in ("target_tokens", "max_epochs", "datasets"))
        if unknown:
            raise WorkspaceError(f"{where} has unknown key {unknown[0]!r}; known: target_tokens, max_epochs, datasets")
        target = _whole(data.get("target_tokens"), f"{where}.target_tokens")
        epochs = _positive(data.get("max_epochs"), f"{where}.max_epochs")
        raw = data.get("datasets") or {}
        if not isinstance(raw, dict):
            raise WorkspaceError(f"{where}.datasets is {raw!r}; it must map dataset names to their limits")
        entries = {}
        for name, entry in raw.items():
            at = f"{where}.datasets.{name}"
            if not isinstance(entry, dict):
                raise WorkspaceError(f"{at} is {entry!r}; it must be a mapping such as {{max_epochs: 4}}")
            bad = sorted(str(k) for k in entry if k not in _DATASET_KEYS)
            if bad:
                raise WorkspaceError(f"{at} has unknown key {bad[0]!r}; known: {', '.join(_DATASET_KEYS)}")
            lo = _fraction(entry.get("min_weight", 0.0), f"{at}.min_weight")
            hi = _fraction(entry.get("max_weight", 1.0), f"{at}.max_weight")
            if lo > hi:
                raise WorkspaceError(f"{at}: min_weight {lo:g} is above max_weight {hi:g}; lower min_weight or raise "
                                     "max_weight")
            entries[str(name)] = DatasetBudget(max_epochs=_positive(entry.get("max_epochs"), f"{at}.max_epochs"),
                                               min_weight=lo, max_weight=hi,
                                               available_tokens=_whole(entry.get("available_tokens"),
                                                                       f"{at}.available_tokens"))
        return cls(target_tokens=target, max_epochs=epochs, datasets=entries)


def _number(value: Any, where: str, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WorkspaceError(f"{where} is {value!r}; it must be {what}")
    return float(value)


def _whole(value: Any, where: str) -> int | None:
    v = _number(value, where, "a whole number of tokens > 0, e.g. 1000000")
    if v is None:
        return None
    if v <= 0 or v != int(v):
        raise WorkspaceError(f"{where} is {value!r}; it must be a whole number of tokens > 0, e.g. 1000000")
    return int(v)


def _positive(value: Any, where: str) -> float | None:
    v = _number(value, where, "a number of epochs > 0, e.g. 4")
    if v is not None and v <= 0:
        raise WorkspaceError(f"{where} is {value!r}; it must be a number of epochs > 0, e.g. 4")
    return v


def _fraction(value: Any, where: str) -> float:
    v = _number(value, where, "a weight from 0 to 1")
    if v is None or not 0 <= v <= 1:
        raise WorkspaceError(f"{where} is {value!r}; it must be a weight from 0 to 1")
    return v


# --- the feasible set ---------------------------------------------------------------------------


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
        """The projected weights as a :class:`~demix_core.mixture.Mixture` (sum exactly renormalised)."""
        from demix_core.mixture import Mixture

        return Mixture.from_weights(self.names, self.project(np.asarray(weights, dtype=np.float64)).tolist())

    def check(self, mixture: Mapping[str, float]) -> None:
        """Raise for a mixture outside the bounds, naming the first dataset it overdraws and by how much.

        Raises:
            BudgetError: One line: the dataset, its bound, where the bound comes from, and the fix.
        """
        for name, lo, hi, avail, epochs in zip(self.names, self.lo, self.hi, self._avail(), self._epochs()):
            w = float(mixture.get(name, 0.0))
            if w > hi + TOLERANCE:
                if self.target_tokens and avail is not None and epochs is not None and \
                        hi < 1 and math.isclose(hi, epochs * avail / self.target_tokens, rel_tol=1e-12):
                    asked = w * self.target_tokens
                    cap = epochs * avail
                    raise BudgetError(
                        f"dataset {name!r}: the mixture asks {w:.4g} x {self.target_tokens:,} = {asked:,.0f} tokens, "
                        f"but {name} holds {avail:,} tokens x {epochs:g} epochs = {cap:,.0f}: over by "
                        f"{asked - cap:,.0f} tokens ({(asked - cap) / avail:.3g} epochs); lower its weight to "
                        f"{hi:.4g}, allow {name} {asked / avail:.3g} epochs, or lower the target tokens to "
                        f"{math.floor(cap / w):,}")
                raise BudgetError(f"dataset {name!r}: weight {w:.4g} is above its max weight {hi:.4g} by "
                                  f"{w - hi:.4g}; lower it or raise {name}'s max weight")
            if w < lo - TOLERANCE:
                raise BudgetError(f"dataset {name!r}: weight {w:.4g} is below its min weight {lo:.4g} by {lo - w:.4g}; "
                                  f"raise it or lower {name}'s min weight")

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


def available_tokens(ws: Workspace, budget: Budget | None = None) -> dict[str, int | None]:
    """Available tokens per component's dataset: declared (budget) > the dataset entry's > the component's."""
    budget = budget if budget is not None else ws.budget
    out: dict[str, int | None] = {}
    datasets = {d.name: d for d in ws.datasets}
    for c in ws.components:
        declared = budget.entry(c.name).available_tokens
        ds = datasets.get(c.dataset or c.name)
        measured = ds.tokens if ds is not None and ds.tokens else None
        out[c.name] = declared if declared is not None else (measured or (c.tokens or None))
    return out


def resolve_bounds(ws: Workspace, *, target_tokens: int | None = None, budget: Budget | None = None) -> Bounds:
    """The workspace's feasible set for a target (default: the budget's ``target_tokens``).

    Raises:
        BudgetError: No mixture fits: one line naming the dataset that limits it and by how much.
    """
    budget = budget if budget is not None else ws.budget
    target = target_tokens if target_tokens is not None else budget.target_tokens
    names = ws.component_names
    unknown = [n for n in budget.datasets if n not in names]
    if unknown:
        raise BudgetError(f"budget names dataset {unknown[0]!r}, which is no component of this workspace; "
                          f"use one of {', '.join(names)}")
    avail = available_tokens(ws, budget)
    lo, hi, epochs = [], [], []
    for n in names:
        e = budget.entry(n)
        cap = e.max_weight
        ep = budget.epochs_of(n)
        if target is not None and ep is not None:
            a = avail[n]
            if a is None:
                raise BudgetError(f"dataset {n!r} has no token count, so its {ep:g}-epoch cap cannot be applied; run "
                                  f"`demix budget --workspace {ws.root} --measure` or declare it with "
                                  f"--available {n}=N")
            cap = min(cap, ep * a / target)
        lo.append(e.min_weight)
        hi.append(min(1.0, cap))
        epochs.append(ep)
    bounds = Bounds(names, tuple(lo), tuple(hi), target, tuple(avail[n] for n in names), tuple(epochs))
    _check_nonempty(bounds)
    return bounds


def _check_nonempty(b: Bounds) -> None:
    """Raise unless some mixture fits ``b``, naming the dataset that limits it and by how much."""
    avail, epochs, target = b._avail(), b._epochs(), b.target_tokens
    for name, lo, hi, a, ep in zip(b.names, b.lo, b.hi, avail, epochs):
        if lo > hi + TOLERANCE:
            if target and a is not None and ep is not None:
                need, has = lo * target, ep * a
                raise BudgetError(f"dataset {name!r}: its min weight {lo:g} needs {need:,.0f} of the {target:,} target "
                                  f"tokens, but it holds {a:,} tokens x {ep:g} epochs = {has:,.0f}: short by "
                                  f"{need - has:,.0f} tokens; allow {name} {need / a:.3g} epochs, lower its min "
                                  f"weight to {hi:.4g}, or lower the target tokens to {math.floor(has / lo):,}")
            raise BudgetError(f"dataset {name!r}: min weight {lo:g} is above its max weight {hi:g}; lower one of them")
    low = math.fsum(b.lo)
    if low > 1 + TOLERANCE:
        i = int(np.argmax(b.lo))
        raise BudgetError(f"the min weights sum to {low:.4g}, above 1 by {low - 1:.4g}; lower some, e.g. "
                          f"{b.names[i]}'s {b.lo[i]:g} to {max(0.0, b.lo[i] - (low - 1)):.4g}")
    top = math.fsum(b.hi)
    if top < 1 - TOLERANCE:
        capped = [i for i, (a, ep) in enumerate(zip(avail, epochs))
                  if target and a is not None and ep is not None and b.hi[i] < 1]
        if target and capped:
            i = max(capped, key=lambda j: avail[j] or 0)  # the cheapest to repeat more: the most tokens per epoch
            name, a_i, ep_i = b.names[i], int(avail[i] or 0), float(epochs[i] or 0)
            short = (1 - top) * target
            allows = top * target
            raise BudgetError(
                f"target {target:,} tokens is more than the data allows at the epoch caps ({allows:,.0f} tokens): "
                f"short "
                f"by {short:,.0f} tokens; the largest dataset, {name!r} ({a_i:,} tokens x {ep_i:g} epochs), limits it: "
                f"allow {name} {ep_i + short / a_i:.3g} epochs, or lower the target tokens to {math.floor(allows):,}")
        i = int(np.argmin(b.hi))
        raise BudgetError(f"the max weights sum to {top:.4g}, below 1 by {1 - top:.4g}; raise some, e.g. "
                          f"{b.names[i]}'s {b.hi[i]:g} to {min(1.0, b.hi[i] + 1 - top):.4g}")


def mixture_from_trial_params(names: Sequence[str], params: Mapping[str, float], bounds: Bounds | None) -> Any:
    """A trial's mixture: Optuna's draws mapped to the simplex (flat Dirichlet), then onto the feasible set.

    The one mapping every worker and sampler uses, so a trial's parameters always name the mixture it
    evaluated; a feasible mixture enqueued with :func:`~demix_core.mixture.params_from_mixture` maps back to itself.
    """
    from demix_core.mixture import mixture_from_params

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


def slider_move(weights: Mapping[str, float], moved: str, locked: Iterable[str], bounds: Bounds) -> dict[str, float]:
    """Feasible weights after one slider moved: the moved value is clamped to its range, locked weights stay,
    and the free ones take the rest in proportion to their current values (equally when all are 0), moved
    onto their own bounds by the Euclidean projection when the proportional split would cross one.

    Args:
        weights: Every component's weight, ``moved`` already at its requested value.
        moved: The component whose slider moved.
        locked: Components whose weights must not change (``moved`` is ignored here).
        bounds: The feasible set.

    Returns:
        Weights in the order of ``weights``: they sum to 1 (to ~1e-15) and keep every bound.

    Raises:
        BudgetError: An unknown name, or locked weights that leave no feasible completion.
    """
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


# --- measuring and saving ---------------------------------------------------------------------------


def measure_tokens(ws: Workspace) -> dict[str, int]:
    """Tokenize each component's dataset (its ``train`` file) with the workspace tokenizer: tokens per component.

    Raises:
        BudgetError: No tokenizer, or a component without a dataset file (declare its tokens instead).
    """
    from demix_core.data.tokenizer import file_tokens, load_tokenizer

    if not ws.tokenizer:
        raise BudgetError(f"workspace {ws.root} has no tokenizer to measure with; set 'tokenizer' in demix.yaml or "
                          "declare each dataset's tokens with --available name=N")
    datasets = {d.name: d for d in ws.datasets}
    files: dict[str, Path] = {}
    for c in ws.components:
        ds = datasets.get(c.dataset or c.name)
        if ds is None or not ws.path(ds.train).is_file():
            raise BudgetError(f"component {c.name!r} has no dataset file in this workspace to tokenize; declare its "
                              f"tokens with --available {c.name}=N")
        files[c.name] = ws.path(ds.train)
    tokenizer = load_tokenizer(ws.path(ws.tokenizer))
    return {name: int(len(file_tokens(tokenizer, path))) for name, path in files.items()}


def with_changes(budget: Budget, *, target_tokens: int | None = None, max_epochs: float | None = None,
                 epochs: Mapping[str, float] | None = None, min_weight: Mapping[str, float] | None = None,
                 max_weight: Mapping[str, float] | None = None,
                 available: Mapping[str, int] | None = None) -> Budget:
    """A copy of ``budget`` with the given settings replaced (checked as the manifest would be).

    Raises:
        WorkspaceError: A value out of range.
    """
    data = budget.to_dict()
    if target_tokens is not None:
        data["target_tokens"] = target_tokens
    if max_epochs is not None:
        data["max_epochs"] = max_epochs
    entries: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (data.get("datasets") or {}).items()}
    for key, values in (("max_epochs", epochs), ("min_weight", min_weight), ("max_weight", max_weight),
                        ("available_tokens", available)):
        for name, v in (values or {}).items():
            entries.setdefault(name, {})[key] = v
    if entries:
        data["datasets"] = entries
    return Budget.from_dict(data)
