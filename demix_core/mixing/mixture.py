"""Mixtures: non-negative weights over named components that sum to 1.

Also the two bridges a search needs: Optuna parameters <-> the simplex (the flat-Dirichlet trick from
Optuna's FAQ), and the DeMix Dirichlet sampler (token-count prior, temperature, caps, grid rounding).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from demix_core.errors import MixtureError
from demix_core.mixing.pairs import format_pairs, parse_pairs, split_items

_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Mixture:
    """Weights over named components, validated and normalised to sum to 1.

    Attributes:
        names: Component names, in the workspace's order.
        weights: One non-negative weight per name; they sum to 1.
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_weights(
        cls, names: Sequence[str], weights: Sequence[float], *, normalize: bool = True
    ) -> Mixture:
        """Build a mixture, checking count, sign, finiteness and sum.

        Args:
            names: Component names.
            weights: Raw weights (any positive scale when ``normalize`` is true).
            normalize: Rescale the weights to sum to 1; when false they must already.

        Raises:
            MixtureError: Wrong count, a negative / NaN / infinite weight, or a zero sum.
        """
        names = tuple(str(n) for n in names)
        if len(set(names)) != len(names):
            raise MixtureError(f"component names repeat in {list(names)}; give each component once")
        if len(weights) != len(names):
            raise MixtureError(
                f"got {len(weights)} weights for {len(names)} components ({', '.join(names)}); "
                "give one weight per component"
            )
        values = []
        for name, w in zip(names, weights):
            try:
                v = float(w)
            except (TypeError, ValueError):
                raise MixtureError(f"weight for {name!r} is {w!r}, not a number") from None
            if not math.isfinite(v):
                raise MixtureError(f"weight for {name!r} is {v}; weights must be finite numbers >= 0")
            if v < 0:
                raise MixtureError(f"weight for {name!r} is negative ({v}); weights must be >= 0")
            values.append(v)
        total = math.fsum(values)
        if total <= 0:
            raise MixtureError(f"weights {values} sum to 0; at least one component needs a weight > 0")
        if normalize:
            values = [v / total for v in values]
        elif abs(total - 1.0) > _SUM_TOLERANCE:
            raise MixtureError(f"weights sum to {total:.6g}, not 1; rescale them or pass normalize")
        return cls(names, tuple(values))

    @classmethod
    def from_mapping(cls, names: Sequence[str], mapping: Mapping[str, float]) -> Mixture:
        """Build a mixture from ``{name: weight}``; names left out get weight 0.

        Raises:
            MixtureError: A name that is not a component, or invalid weights.
        """
        unknown = [k for k in mapping if k not in names]
        if unknown:
            raise MixtureError(
                f"unknown component {unknown[0]!r} in mixture; the components are: {', '.join(names)}"
            )
        return cls.from_weights(names, [mapping.get(n, 0.0) for n in names])

    @classmethod
    def parse(cls, text: str, names: Sequence[str]) -> Mixture:
        """Parse ``"general=0.5,code=0.3"`` (named) or ``"0.5,0.3,0.2"`` (positional).

        Raises:
            MixtureError: Malformed text, unknown names, or invalid weights.
        """
        parts = split_items(text)
        if not any(parts):
            raise MixtureError("mixture is empty; write it as name=weight,name=weight")
        if all("=" in p for p in parts) or not all(parts):
            mapping = parse_pairs(parts, what="mixture", example="general=0.5,code=0.5", error=MixtureError)
            return cls.from_mapping(names, mapping)
        if any("=" in p for p in parts):
            raise MixtureError(f"mixture {text!r} mixes name=weight and bare weights; use one form")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise MixtureError(f"weights {text!r} are not all numbers; write them as 0.5,0.3,0.2") from None
        return cls.from_weights(names, values)

    def as_dict(self) -> dict[str, float]:
        """The mixture as ``{name: weight}``."""
        return dict(zip(self.names, self.weights))

    def array(self) -> np.ndarray:
        """The weights as a float64 vector."""
        return np.asarray(self.weights, dtype=np.float64)

    def label(self, digits: int = 2) -> str:
        """A short human label: ``general=0.50 code=0.30``; weights that print as zero are left out.

        The one label of a mixture: the CLI, the workers' logs and the dashboard all use it.
        """
        return format_pairs(self.as_dict(), digits=digits, sep=" ", nonzero=True)

    def __str__(self) -> str:
        """``general=0.5,code=0.5``: every weight, 6 significant digits; :meth:`parse` reads it back."""
        return format_pairs(self.as_dict())


# --- Optuna parameters <-> the simplex ------------------------------------------------------------

_PARAM_EPS = 1e-12


def param_name(component: str) -> str:
    """The Optuna parameter holding one component's raw draw."""
    return f"u_{component}"


def mixture_from_params(names: Sequence[str], params: Mapping[str, float]) -> Mixture:
    """Map Optuna's uniform draws ``u_i`` to the simplex: ``x_i = -log(u_i)``, normalised.

    With ``u_i ~ U(0, 1)`` this is a flat Dirichlet, as Optuna's FAQ recommends.
    """
    raw = [-math.log(max(float(params[param_name(n)]), _PARAM_EPS)) for n in names]
    if math.fsum(raw) <= 0:
        raw = [1.0] * len(names)
    return Mixture.from_weights(names, raw)


def params_from_mixture(mixture: Mixture) -> dict[str, float]:
    """The Optuna parameters that map back to ``mixture`` (for enqueuing): ``u_i = exp(-p_i)``."""
    return {param_name(n): math.exp(-w) for n, w in zip(mixture.names, mixture.weights)}


# --- The DeMix Dirichlet sampler ------------------------------------------------------------------


@dataclass(frozen=True)
class DirichletPrior:
    """The paper's mixture sampler: a Dirichlet centred on a token-count prior.

    Attributes:
        names: Component names.
        tokens: Tokens available per component (the prior is ``tokens ** (1 / temperature)``).
        temperature: >1 flattens the prior towards uniform, <1 sharpens it.
        concentration: Dirichlet total concentration; small values give spiky mixtures.
        caps: Per-component upper bounds on a weight (1.0 means no cap).
        grid: Round weights to multiples of this (0 disables rounding).
    """

    names: tuple[str, ...]
    tokens: tuple[float, ...]
    temperature: float = 1.0
    concentration: float = 1.0
    caps: tuple[float, ...] | None = None
    grid: float = 0.0

    def __post_init__(self) -> None:
        k = len(self.names)
        if len(self.tokens) != k or k == 0:
            raise MixtureError(f"need one token count per component, got {len(self.tokens)} for {k}")
        if any(t <= 0 or not math.isfinite(t) for t in self.tokens):
            raise MixtureError(f"token counts must be positive, got {list(self.tokens)}")
        if self.temperature <= 0 or self.concentration <= 0:
            raise MixtureError("temperature and concentration must be > 0")
        if self.caps is not None:
            if len(self.caps) != k:
                raise MixtureError(f"need one cap per component, got {len(self.caps)} for {k}")
            if any(c <= 0 or c > 1 for c in self.caps):
                raise MixtureError(f"caps must lie in (0, 1], got {list(self.caps)}")
            if math.fsum(self.caps) < 1.0 - _SUM_TOLERANCE:
                raise MixtureError(f"caps {list(self.caps)} sum below 1; no mixture can satisfy them")
        if not 0 <= self.grid < 1:
            raise MixtureError(f"grid must lie in [0, 1), got {self.grid}")

    def prior(self) -> np.ndarray:
        """The prior mean: token shares sharpened or flattened by the temperature."""
        p = np.asarray(self.tokens, dtype=np.float64) ** (1.0 / self.temperature)
        return p / p.sum()

    def sample(self, n: int, *, seed: int | None = None) -> np.ndarray:
        """Draw ``n`` mixtures, shape (n, K): each row sums to 1 and respects the caps and grid."""
        rng = np.random.default_rng(seed)
        alpha = np.maximum(self.prior() * self.concentration * len(self.names), 1e-3)
        caps = np.ones(len(self.names)) if self.caps is None else np.asarray(self.caps, dtype=np.float64)
        out = np.empty((n, len(self.names)))
        for i in range(n):
            x = _apply_caps(rng.dirichlet(alpha), caps)
            if self.grid:
                x = _round_to_grid(x, self.grid, caps)
            out[i] = x
        return out

    def mixtures(self, n: int, *, seed: int | None = None) -> list[Mixture]:
        """Draw ``n`` mixtures as :class:`Mixture` objects."""
        return [Mixture.from_weights(self.names, row) for row in self.sample(n, seed=seed)]


def _apply_caps(x: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Clip to the caps and hand the excess to uncapped components in proportion to their weight."""
    x = x.copy()
    for _ in range(len(x) + 1):
        over = x > caps
        if not over.any():
            break
        excess = float((x[over] - caps[over]).sum())
        x[over] = caps[over]
        free = x < caps
        room = caps[free] - x[free]
        share = x[free] if x[free].sum() > 0 else room
        x[free] += np.minimum(room, excess * share / share.sum())
    return x / x.sum()


def _round_to_grid(x: np.ndarray, grid: float, caps: np.ndarray) -> np.ndarray:
    """Round to multiples of ``grid`` keeping the sum at 1 (largest remainders get the leftover steps)."""
    steps = round(1.0 / grid)
    cap_steps = np.floor(caps * steps + 1e-9).astype(int)
    units = np.minimum(np.floor(x * steps).astype(int), cap_steps)
    remainder = x * steps - units
    for idx in np.argsort(-remainder):
        if units.sum() >= steps:
            break
        if units[idx] < cap_steps[idx]:
            units[idx] += 1
    while units.sum() < steps:  # every remainder used: fill any component with room
        idx = int(np.argmax(cap_steps - units))
        units[idx] += 1
    return units / units.sum()


def uniform_simplex(k: int, n: int, *, seed: int | None = None) -> np.ndarray:
    """``n`` flat-Dirichlet mixtures over ``k`` components, shape (n, k)."""
    return np.random.default_rng(seed).dirichlet(np.ones(k), size=n)


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """Validate component names (non-empty, no commas or '=' which the mixture syntax uses)."""
    out = tuple(names)
    for n in out:
        if not n or any(c in n for c in ",= \t"):
            raise MixtureError(f"component name {n!r} is invalid; use letters, digits, '-' or '_'")
    return out


# --- weights on a grid (the Mixer's sliders; moves are demix_core.mixing.bounds.slider_move) -----------------


def grid_units(weights: Mapping[str, float], *, digits: int = 4) -> dict[str, int]:
    """Weights as integer units of ``10**-digits`` summing to exactly ``10**digits`` (largest remainders
    round up); the weights are normalised first.

    Raises:
        MixtureError: Negative or non-finite weights, or a zero sum.
    """
    values = Mixture.from_weights(list(weights), list(weights.values())).weights
    return dict(zip(weights, _largest_remainder(values, 10 ** digits)))


def _largest_remainder(shares: Sequence[float], total: int) -> list[int]:
    """Split ``total`` integer units in proportion to ``shares`` (equally when they are all 0); exact sum."""
    if not shares:
        return []
    weight = math.fsum(shares)
    ideal = [s * total / weight for s in shares] if weight > 0 else [total / len(shares)] * len(shares)
    out = [math.floor(v) for v in ideal]
    order = sorted(range(len(shares)), key=lambda i: (out[i] - ideal[i], i))  # largest remainder first
    for i in order[:total - sum(out)]:
        out[i] += 1
    return out

