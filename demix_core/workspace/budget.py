"""Token budgets as the manifest holds them: what a mixture may ask of the data the team really has.

A workspace's ``budget:`` (in ``demix.yaml``) holds a target number of training tokens and, per
component's dataset, its available tokens (measured with the workspace tokenizer, or declared for
data trained elsewhere), a maximum number of epochs (repetitions), and optional min / max weights.
The feasible set they define is :class:`~demix_core.mixing.bounds.Bounds`
(:func:`demix_core.workspace.feasible.resolve_bounds`).

Manifest keys (all optional)::

    budget:
      target_tokens: 2000000        # training tokens of the run the mixture is for
      max_epochs: 4                 # cap for every dataset (none: unlimited; absent: DEFAULT_MAX_EPOCHS)
      datasets:                     # keyed by component name (each component stands for its dataset)
        code: {max_epochs: 2, min_weight: 0.05, max_weight: 0.5, available_tokens: 1200000}

A budget that states no epoch cap gets :data:`DEFAULT_MAX_EPOCHS` (4) for every dataset: repeating data beyond
about 4 epochs loses most of its value (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"), and
OLMo-core's own ``max_repetition_ratio`` defaults to 1. ``max_epochs: none`` lifts the cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from demix_core.errors import WorkspaceError

if TYPE_CHECKING:
    pass

DEFAULT_MAX_EPOCHS = 4.0  # the epoch cap of a dataset whose budget states none (Muennighoff et al. 2023)
UNLIMITED = math.inf  # ``max_epochs: none``: no cap (written back as ``none``)
DEFAULT_EPOCHS_NOTE = (f"{DEFAULT_MAX_EPOCHS:g} epochs is the default cap where the budget states none: repeating "
                       "data beyond ~4 epochs loses most of its value (Muennighoff et al. 2023)")
_DATASET_KEYS = ("max_epochs", "min_weight", "max_weight", "available_tokens")


@dataclass(frozen=True)
class DatasetBudget:
    """One dataset's limits. ``None`` leaves a limit to the budget's default (epochs) or the data (tokens);
    ``max_epochs`` :data:`UNLIMITED` is no cap."""

    max_epochs: float | None = None
    min_weight: float = 0.0
    max_weight: float = 1.0
    available_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as manifest data (defaults left out)."""
        out: dict[str, Any] = {}
        if self.max_epochs is not None:
            out["max_epochs"] = _epochs_out(self.max_epochs)
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
        """A dataset's epoch cap: its own, else the budget's, else :data:`DEFAULT_MAX_EPOCHS`; ``None``: unlimited
        (``max_epochs: none``)."""
        own = self.entry(name).max_epochs
        cap = own if own is not None else self.max_epochs if self.max_epochs is not None else DEFAULT_MAX_EPOCHS
        return None if math.isinf(cap) else cap

    def epochs_default(self, name: str) -> bool:
        """Whether a dataset's epoch cap is :data:`DEFAULT_MAX_EPOCHS` because the budget states none for it."""
        return self.entry(name).max_epochs is None and self.max_epochs is None

    def to_dict(self) -> dict[str, Any]:
        """The section as manifest data."""
        out: dict[str, Any] = {}
        if self.target_tokens is not None:
            out["target_tokens"] = self.target_tokens
        if self.max_epochs is not None:
            out["max_epochs"] = _epochs_out(self.max_epochs)
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


def _epochs_out(epochs: float) -> float | str:
    """An epoch cap as manifest data: ``none`` for unlimited."""
    return "none" if math.isinf(epochs) else epochs


def _positive(value: Any, where: str) -> float | None:
    """An epoch cap: a number > 0, or ``none`` (or infinity) for :data:`UNLIMITED`."""
    if (isinstance(value, str) and value.strip().lower() == "none") or (isinstance(value, float) and value == math.inf):
        return UNLIMITED
    v = _number(value, where, "a number of epochs > 0, e.g. 4, or none for unlimited")
    if v is not None and v <= 0:
        raise WorkspaceError(f"{where} is {value!r}; it must be a number of epochs > 0, e.g. 4, or none for unlimited")
    return v


def _fraction(value: Any, where: str) -> float:
    v = _number(value, where, "a weight from 0 to 1")
    if v is None or not 0 <= v <= 1:
        raise WorkspaceError(f"{where} is {value!r}; it must be a weight from 0 to 1")
    return v


# --- the feasible set ---------------------------------------------------------------------------


