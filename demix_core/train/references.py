"""Train a mixture like a reference, into the workspace: ``demix workspace train-reference`` and the dashboard's
"Train as reference".

The recipe is the workspace's own: the training settings and general-data share of an existing reference
(else of a component, which the demo's references copy), continued from the workspace's base, on the
workspace's datasets: each sequence comes from the general data with probability ``1 - share``, else from
component i's dataset with probability ``w_i`` (:func:`demix_core.train.trainer.train_reference`, the demo's
reference recipe). Training resumes from its last saved step (``references/<name>.partial``); the
finished checkpoint is written atomically and then added to the manifest's references (atomically).
:func:`train_entry` is the one way a model lands there (a reference, or a trained proxy in ``trained_proxies/``:
:mod:`demix_core.train.reference_set` trains sets of both).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from demix_core.errors import ConfigError, WorkspaceError
from demix_core.io.names import seeded_name
from demix_core.mixing.mixture import Mixture
from demix_core.mixing.pairs import format_pairs
from demix_core.train.trainer import TrainConfig, read_training
from demix_core.workspace.manifest import ReferenceEntry, Workspace, load_workspace

REFERENCES_FOLDER = "references"
FOLDERS = {"reference": REFERENCES_FOLDER, "trained_proxy": "trained_proxies"}  # a model's kind -> its folder
STEP_LINE = "[{step}/{steps}]"  # a training's progress lines start so: a background job's bar reads the last one
GENERAL_DOMAIN = "general"


@dataclass
class Recipe:
    """How a workspace trains a reference."""

    cfg: TrainConfig
    share: float
    general: list[str]  # the general data's training files
    source: str  # where the settings came from, for people


def _same_mixture(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    keys = {k for k, v in {**a, **b}.items() if v > 0}
    return all(abs(float(a.get(k, 0.0)) - float(b.get(k, 0.0))) < 1e-6 for k in keys)


def recipe(ws: Workspace, **overrides: Any) -> Recipe:
    """The workspace's reference recipe: an existing reference's settings, else a component's, with ``overrides``
    (``steps``, ``batch``, ``seq_len``, ``lr``, ``share``, ``seed``) applied; the training seed is ``seed``, else 0
    (never the source's: that may be a repeat's).

    Raises:
        WorkspaceError: The workspace cannot train (:meth:`Workspace.training_problem`), or records no training
            settings and no ``steps`` override is given.
    """
    problem = ws.training_problem()
    if problem:
        raise WorkspaceError(problem)
    record, source = {}, ""
    for entry in [r for r in ws.references if r.kind == "reference"] + list(ws.components):
        record = read_training(ws.path(entry.path))
        if record.get("config"):
            source = f"{entry.name}'s training.json"
            break
    known = {f.name for f in fields(TrainConfig)}
    if record.get("config"):
        cfg = TrainConfig(**{k: v for k, v in record["config"].items() if k in known})
    elif overrides.get("steps"):
        cfg, source = TrainConfig(tokens=1), "the given settings"
    else:
        raise WorkspaceError(f"no reference or component of {ws.root} records its training settings; give them "
                             "(--steps, --batch, --seq-len, --lr, --share)")
    share = float(overrides.get("share") or record.get("share") or 0.5)
    if record.get("kind") == "component" and float(record.get("share") or 0) >= 1.0:
        share = 0.5  # the general component itself trains on general data only; references mix
    if not 0 < share <= 1:
        raise ConfigError(f"share {share} must lie in (0, 1]")
    changes = {k: overrides[k] for k in ("batch", "seq_len", "lr") if overrides.get(k) is not None}
    cfg = replace(cfg, **changes, seed=int(overrides.get("seed") or 0))  # not the source's: a repeat's seed is its own
    steps = overrides.get("steps") or cfg.steps
    cfg = replace(cfg, tokens=int(steps) * cfg.batch * cfg.seq_len, save_every=min(cfg.save_every, max(1, steps)))
    return Recipe(cfg, share, [str(ws.path(general_dataset(ws).train))], source)


def general_dataset(ws: Workspace) -> Any:
    """The general data references mix in: the dataset of the component trained on its own data only (share 1),
    else the first dataset of domain ``general``.

    Raises:
        WorkspaceError: Neither exists.
    """
    by_name = {d.name: d for d in ws.datasets}
    for c in ws.components:
        if float(read_training(ws.path(c.path)).get("share") or 0) >= 1.0 and (c.dataset or c.name) in by_name:
            return by_name[c.dataset or c.name]
    for d in ws.datasets:
        if d.domain == GENERAL_DOMAIN:
            return d
    raise WorkspaceError(f"workspace {ws.root} has no general dataset (domain {GENERAL_DOMAIN!r}) to mix in")


def default_name(mixture: Mixture, prefix: str = "mix") -> str:
    """``<prefix>-<8 hex>``: a stable name for a mixture (weights rounded to 1e-6)."""
    text = format_pairs(mixture.as_dict(), digits=6)
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def find_reference(ws: Workspace, mixture: Mixture, *, kind: str = "reference", seed: int = 0) -> ReferenceEntry | None:
    """A model of ``kind`` in the workspace's manifest trained on ``mixture`` (weights within 1e-6) at training seed
    ``seed`` (default 0: the mixture's own model; a repeat at another seed keeps its own name), if any."""
    want = mixture.as_dict()
    for r in ws.references:
        if r.kind == kind and (r.seed or 0) == seed and _same_mixture(r.mixture, want):
            return r
    return None


def train_workspace_reference(ws: Workspace, mixture: Mixture | str | Mapping[str, float], *,
                              name: str | None = None, log: Callable[[str], None] = print,
                              **overrides: Any) -> ReferenceEntry:
    """Train ``mixture`` with the workspace's reference recipe and add it to the manifest's references.

    Resumable: a run cut short continues from its last saved step when started again with the same name and
    mixture. Progress goes to ``log`` as ``[step/total] loss ...`` lines.

    Args:
        ws: The workspace (with datasets and a base).
        mixture: Weights over the components (``"a=0.5,b=0.5"``, a mapping or a Mixture).
        name: The reference's name (default: ``mix-<hash of the mixture>``, with ``-s<seed>`` at a seed other
            than 0); its folder is ``references/<name>``.
        log: Where progress lines go.
        **overrides: Recipe changes (see :func:`recipe`); ``seed`` is the training seed (default 0): the same seed
            trains the same weights, another seed a repeat of the mixture (recorded as the entry's ``seed``).

    Returns:
        The manifest entry (already saved).

    Raises:
        ConfigError: The name is taken by a reference of another mixture or seed, is not a valid name, or the
            seed is negative.
        WorkspaceError: See :func:`recipe`.
    """
    mix = as_mixture(ws, mixture)
    seed = overrides.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"training seed {seed!r} is not allowed: give a whole number, 0 or more")
    name = name or seeded_name(default_name(mix), seed or 0)
    _check_name(ws, name, mix, seed or 0)
    entry, _ = train_entry(ws, name, mix, recipe(ws, **overrides), log=log)
    return entry


def as_mixture(ws: Workspace, mixture: Mixture | str | Mapping[str, float]) -> Mixture:
    """``mixture`` over the workspace's components (``"a=0.5,b=0.5"``, a mapping or a Mixture)."""
    if isinstance(mixture, Mixture):
        return mixture
    return ws.parse_mixture(mixture) if isinstance(mixture, str) else Mixture.from_mapping(ws.component_names,
                                                                                          mixture)


def train_entry(ws: Workspace, name: str, mix: Mixture, rec: Recipe, *, kind: str = "reference",
                log: Callable[[str], None] = print, step_line: str | None = STEP_LINE) -> tuple[ReferenceEntry, bool]:
    """Train ``mix`` with ``rec`` into ``<folder of kind>/<name>`` unless a finished model is there, and add it to
    the manifest (atomically, re-read first: others may have added references meanwhile). Resumes a run cut short.

    Args:
        ws: The workspace; its ``references`` are brought up to date.
        name: The model's name (checked by the caller).
        mix: Its mixture.
        rec: How to train it (:func:`recipe`).
        kind: ``reference`` (``references/``) or ``trained_proxy`` (``trained_proxies/``).
        log: Where progress lines go.
        step_line: How each progress line of the training starts (``{name}``, ``{step}``, ``{steps}``); None:
            no per-step lines.

    Returns:
        (the manifest entry, whether it was trained now).
    """
    folder = FOLDERS[kind]
    out = ws.root / folder / name
    trained = not out.exists()
    if trained:
        _train(ws, name, mix, out, rec, log, kind=kind, step_line=step_line)
    else:
        log(f"{name}: already trained ({out}); adding it to the {folder.replace('_', ' ')}")
    entry = ReferenceEntry(name=name, path=f"{folder}/{name}", mixture=mix.as_dict(), kind=kind,
                           seed=rec.cfg.seed or None)
    fresh = load_workspace(ws.root)  # the manifest as it is now (others may have added references meanwhile)
    if not any(r.name == name and r.kind == kind for r in fresh.references):
        fresh.references.append(entry)
        fresh.save()
    ws.references = fresh.references
    return entry, trained


def _check_name(ws: Workspace, name: str, mix: Mixture, seed: int) -> None:
    """Check that ``name`` may hold a reference of ``mix`` trained at ``seed``.

    Raises:
        ConfigError: See :func:`name_problem`.
    """
    problem = name_problem(ws, name, mix, seed=seed)
    if problem:
        raise ConfigError(problem)


def name_problem(ws: Workspace, name: str, mix: Mixture, *, kind: str = "reference",
                 seed: int | None = None) -> str | None:
    """Why ``name`` cannot hold a model of ``mix`` of ``kind`` (None when it can): not a valid name, a manifest
    entry of that name with another mixture (or, with ``seed`` given, another training seed), or (with no such
    entry) a folder of that name holding another mixture (or seed).
    """
    from demix_core.io.names import check_study_name

    try:
        check_study_name(name)
    except Exception as exc:
        return f"reference name {name!r} is not allowed ({exc}); use letters, digits and -_."
    same_name = [r for r in ws.references if r.name == name]
    if any(not _same_mixture(r.mixture, mix.as_dict()) for r in same_name):
        return f"reference {name!r} already exists with another mixture; choose another --name"
    if seed is not None and any((r.seed or 0) != seed for r in same_name if r.kind == kind):
        return f"reference {name!r} already exists with another training seed; choose another --name"
    out = ws.root / FOLDERS[kind] / name
    listed = any(r.kind == kind for r in same_name)
    if listed or not out.exists():
        return None
    record = read_training(out)
    if not _same_mixture(record.get("mixture") or {}, by_dataset(ws, mix)):
        return f"{out} holds a model of another mixture; choose another --name"
    if seed is not None and int(record.get("seed") or 0) != seed:
        return f"{out} holds a model trained at seed {record.get('seed')}; choose another --name"
    return None


def _train(ws: Workspace, name: str, mix: Mixture, out: Path, rec: Recipe, log: Callable[[str], None], *,
           kind: str, step_line: str | None) -> None:
    """Train the mixture into ``out`` with the recipe, resuming a run cut short; a progress line every 2%."""
    from demix_core.train.trainer import train_reference

    datasets = {d.name: [str(ws.path(d.train))] for d in ws.datasets}
    heldout = {d.name: str(ws.path(d.heldout)) for d in ws.datasets}
    base = ws.base_path() or ws.root / "base"  # recipe() checked that the workspace has a base
    total = rec.cfg.steps
    every = max(1, total // 50)
    start = time.perf_counter()
    partial = out.with_name(out.name + ".partial")
    what = name if kind == "reference" else f"{name} ({kind.replace('_', ' ')})"
    log(f"{what}: training {mix.label(3)} for {total} steps (batch {rec.cfg.batch} x {rec.cfg.seq_len}, lr "
        f"{rec.cfg.lr:g}, general share {1 - rec.share:.2f}; recipe from {rec.source})"
        + (" - resuming from its last saved step" if partial.exists() else ""))

    def on_step(step: int, steps: int, loss: float) -> None:
        if step_line is not None and (step % every == 0 or step == steps):
            rate = (time.perf_counter() - start) / max(1, step)
            log(f"{step_line.format(name=name, step=step, steps=steps)} loss {loss:.3f}, "
                f"~{rate * (steps - step):.0f} s left")

    out.parent.mkdir(parents=True, exist_ok=True)
    train_reference(base, datasets, by_dataset(ws, mix), rec.general, out, cfg=rec.cfg, share=rec.share, kind=kind,
                    heldout=heldout, on_step=on_step)
    log(f"{what}: trained in {time.perf_counter() - start:.0f} s -> {out}")


def by_dataset(ws: Workspace, mix: Mixture) -> dict[str, float]:
    """The mixture keyed by each component's dataset (what :func:`train_reference` mixes), positive weights only."""
    out: dict[str, float] = {}
    for c, w in mix.as_dict().items():
        if w > 0:
            key = ws.component(c).dataset or c
            out[key] = out.get(key, 0.0) + float(w)
    return out
