"""A workspace's feasible set: its token budget turned into :class:`~demix_core.mixing.bounds.Bounds`.

:func:`resolve_bounds` reads the budget (:mod:`demix_core.workspace.budget`) and each dataset's available
tokens (declared, else recorded; :func:`measure_tokens` counts them with the workspace tokenizer), refuses a
budget that no mixture meets (naming the dataset that limits it and by how much), and
:func:`with_changes` edits a budget as ``demix budget`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from demix_core.errors import BudgetError
from demix_core.mixing.bounds import TOLERANCE, Bounds
from demix_core.mixing.numbers import readable
from demix_core.workspace.budget import Budget

if TYPE_CHECKING:
    from demix_core.workspace.manifest import Workspace

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


def resolve_bounds(ws: Workspace, *, target_tokens: int | None = None, budget: Budget | None = None,
                   check: bool = True) -> Bounds:
    """The workspace's feasible set for a target (default: the budget's ``target_tokens``).

    Every dataset's epoch cap is :meth:`Budget.epochs_of` (the default
    :data:`~demix_core.workspace.budget.DEFAULT_MAX_EPOCHS` where the budget states none); the default cap of a
    dataset whose tokens are unknown cannot be applied and is left out of its bound (a cap the budget states is an
    error there).

    Args:
        ws: The workspace.
        target_tokens: The run's training tokens (default: the budget's).
        budget: The budget to read (default: the workspace's).
        check: Refuse a set that no mixture meets (False: the caller checks one mixture against the set, as an
            export does, and names what limits that mixture).

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
        a = avail[n]
        if target is not None and ep is not None and a is None and not budget.epochs_default(n):
            raise BudgetError(f"dataset {n!r} has no token count, so its {ep:g}-epoch cap cannot be applied; run "
                              f"`demix budget --workspace {ws.root} --measure` or declare it with "
                              f"--available {n}=N")
        if target is not None and ep is not None and a is not None:
            cap = min(cap, ep * a / target)
        lo.append(e.min_weight)
        hi.append(min(1.0, cap))
        epochs.append(ep)
    bounds = Bounds(names, tuple(lo), tuple(hi), target, tuple(avail[n] for n in names), tuple(epochs))
    if check:
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
                                  f"{need - has:,.0f} tokens; allow {name} {readable(need / a)} epochs, lower its min "
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
                f"allow {name} {readable(ep_i + short / a_i)} epochs, or lower the target tokens to "
                f"{math.floor(allows):,}")
        i = int(np.argmin(b.hi))
        raise BudgetError(f"the max weights sum to {top:.4g}, below 1 by {1 - top:.4g}; raise some, e.g. "
                          f"{b.names[i]}'s {b.hi[i]:g} to {min(1.0, b.hi[i] + 1 - top):.4g}")


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


def max_target_tokens(ws: Workspace, mixture: Mapping[str, float], budget: Budget | None = None) -> int | None:
    """The most target tokens ``mixture`` can train on within every dataset's epoch cap (None: no dataset limits it).

    For each dataset with weight ``w > 0``, ``available tokens x cap epochs / w``; the smallest.
    """
    b = resolve_bounds(ws, budget=budget, check=False)
    limits = [a * ep / float(mixture.get(name, 0.0)) for name, a, ep in zip(b.names, b._avail(), b._epochs())
              if a is not None and ep is not None and float(mixture.get(name, 0.0)) > 0]
    return math.floor(min(limits)) if limits else None
