"""A set of references for any workspace with datasets: ``demix workspace train-references``, the demo's
``--references N`` and the dashboard's "Train N references".

``count`` distinct mixtures drawn from the paper's Dirichlet prior over the components (centred on their datasets'
token counts at temperature 2, each weight at most 0.7, rounded to a 0.05 grid), each trained with the workspace's
reference recipe (:func:`demix_core.train.references.recipe`) as ``references/ref-XX`` and, for the same mixture,
the paper's compute-matched trained proxy ``trained_proxies/ref-XX``: the components' total steps / M (M = 112,
the mixtures a search trains proxies for), data repeated if need be.

At a training seed S > 0 (``--train-seed S``; the demo's ``--seed S``) the same mixtures are trained again as
repeats ``ref-XX-sS`` (the seed-0 reference's name with ``-sS``), from which ``demix validate`` measures the noise
floor; a repeat needs no trained proxy (validation pairs it with its mixture's).

The same seed draws the same mixtures, so a run cut short continues where it stopped: a mixture that already has a
finished reference at the training seed (under any name) is skipped, a training cut short resumes from its
``.partial`` state, and each model is added to the manifest as it finishes. One line per model,
``[i/n] ref-XX prose=0.40 code=0.20 ...``, gives a background job's progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from demix_core.errors import ConfigError, DemixError, WorkspaceError
from demix_core.io.names import seeded_name
from demix_core.mixing.mixture import DirichletPrior, Mixture
from demix_core.train.references import Recipe, find_reference, name_problem, recipe, train_entry
from demix_core.train.trainer import read_training
from demix_core.workspace.manifest import ComponentEntry, ReferenceEntry, Workspace

PRIOR_TEMPERATURE = 2.0  # flattens the token-count prior towards uniform
PRIOR_CAP = 0.7  # no component takes more than this
PRIOR_GRID = 0.05  # weights are multiples of this
SEARCH_SIZE = 112  # M: the mixtures a search trains proxies for (the paper's 112); sizes the trained proxies
PREFIX = "ref"  # models are named ref-00, ref-01, ...
STEP_LINE = "  {name} step {step}/{steps}"  # a model's own progress: no [i/n], the set's lines drive the bar

Log = Callable[[str], None]


def reference_prior(names: Sequence[str], tokens: Sequence[float]) -> DirichletPrior:
    """The prior reference mixtures are drawn from: centred on the token counts at :data:`PRIOR_TEMPERATURE`,
    weights at most :data:`PRIOR_CAP` on a :data:`PRIOR_GRID` grid.

    Raises:
        WorkspaceError: Fewer than two components (one component has a single mixture).
    """
    if len(names) < 2:
        raise WorkspaceError(f"a reference set needs at least 2 components to mix, got {len(names)}")
    return DirichletPrior(tuple(names), tuple(float(t) for t in tokens), temperature=PRIOR_TEMPERATURE,
                          caps=tuple([PRIOR_CAP] * len(names)), grid=PRIOR_GRID)


def distinct_draws(prior: DirichletPrior, n: int, *, seed: int) -> np.ndarray:
    """The first ``n`` distinct mixtures the prior draws (grid rounding makes repeats likely), shape (n, K).

    Raises:
        DemixError: The prior cannot give ``n`` distinct mixtures in ``50 n`` draws (grid too coarse).
    """
    chosen: list[np.ndarray] = []
    for row in prior.sample(50 * n, seed=seed):
        if not any(np.allclose(row, c, atol=1e-9) for c in chosen):
            chosen.append(row)
            if len(chosen) == n:
                return np.array(chosen)
    raise DemixError(f"the reference prior gave only {len(chosen)} distinct mixtures of {n} asked "
                     f"({len(prior.names)} components on a {prior.grid:g} grid); ask for fewer references")


def _tokens(ws: Workspace, c: ComponentEntry) -> float:
    """A component's token count: its dataset's, else its own (0 when neither is known)."""
    data = {d.name: d.tokens for d in ws.datasets}
    return float(data.get(c.dataset or c.name) or c.tokens or 0)


def reference_mixtures(ws: Workspace, count: int, *, seed: int = 0) -> list[Mixture]:
    """The first ``count`` distinct mixtures of :func:`reference_prior` over the workspace's components, drawn with
    ``seed + 1`` (the demo's references: seed 0, the default, draws the mixtures ``demix demo --references`` trains).

    Components with unknown token counts make the prior flat (every component the same count).
    """
    tokens = [_tokens(ws, c) for c in ws.components]
    if any(t <= 0 for t in tokens):
        tokens = [1.0] * len(tokens)
    rows = distinct_draws(reference_prior(ws.component_names, tokens), count, seed=seed + 1)
    return [Mixture.from_weights(ws.component_names, row, normalize=False) for row in rows]


def trained_proxy_recipe(ws: Workspace, rec: Recipe) -> Recipe:
    """The compute-matched trained proxy's recipe: ``rec`` for the components' total steps / :data:`SEARCH_SIZE`
    steps (at least 1; a component without a record counts ``rec``'s steps), data repeated if need be."""
    total = sum(int(read_training(ws.path(c.path)).get("steps") or rec.cfg.steps) for c in ws.components)
    steps = max(1, round(total / SEARCH_SIZE))
    cfg = replace(rec.cfg, tokens=steps * rec.cfg.batch * rec.cfg.seq_len, allow_repeat=True)
    return Recipe(cfg, rec.share, rec.general, f"{rec.source}, the components' {total} steps / M={SEARCH_SIZE}")


def train_reference_set(ws: Workspace, count: int, *, seed: int = 0, train_seed: int = 0, trained_proxies: bool = True,
                        log: Log = print, progress: bool = True) -> list[ReferenceEntry]:
    """Train ``count`` references on distinct mixtures of the reference prior (and their trained proxies), skipping
    the mixtures that already have one at ``train_seed``; resumable.

    Args:
        ws: The workspace (a base, and a dataset with a training file for every component); its ``references`` are
            brought up to date.
        count: How many mixtures (:func:`reference_mixtures`).
        seed: Which mixtures: the same seed draws the same ones.
        train_seed: The training seed: 0 trains ``ref-XX``; another seed repeats ``ref-XX-s<train_seed>`` of the
            same mixtures, recorded with their seed (the same seed trains the same weights).
        trained_proxies: Also train each mixture's compute-matched trained proxy (:func:`trained_proxy_recipe`); at
            seed 0 only (a repeat needs none).
        log: Where progress lines go: a header, then ``[i/n] ref-XX <mixture> ...`` as each mixture is done.
        progress: Also each training's own lines (its settings, ``ref-XX step s/t loss ...``).

    Returns:
        The reference of each mixture, in draw order (trained now, or found in the manifest).

    Raises:
        ConfigError: ``count`` below 1, a negative seed or training seed, or a trained proxy's folder that holds
            another mixture.
        WorkspaceError: The workspace cannot train references (:func:`demix_core.train.references.recipe`).
        DemixError: The prior cannot give ``count`` distinct mixtures.
    """
    if count < 1:
        raise ConfigError(f"reference count {count} is not allowed: give 1 or more")
    for what, value in (("seed", seed), ("training seed", train_seed)):
        if value < 0:
            raise ConfigError(f"{what} {value} is not allowed: give 0 or more")
    rec = recipe(ws, seed=train_seed)
    mixtures = reference_mixtures(ws, count, seed=seed)
    proxy = trained_proxy_recipe(ws, rec) if trained_proxies and not train_seed else None
    done = sum(find_reference(ws, m, seed=train_seed) is not None for m in mixtures)
    at = f", training seed {train_seed}" if train_seed else ""
    log(f"references: {count} mixtures of the prior (seed {seed}{at}; {done} already trained), {rec.cfg.steps} steps "
        f"each (recipe from {rec.source}); " + (f"trained proxies: {proxy.cfg.steps} steps each ({proxy.source})"
                                                  if proxy else _no_proxies(train_seed, trained_proxies)))
    inner = log if progress else _quiet
    out = []
    for i, mix in enumerate(mixtures):
        start = time.perf_counter()
        entry, trained = _reference(ws, i, mix, rec, proxy is not None, inner)
        if proxy is not None:
            trained = _trained_proxy(ws, entry.name, mix, proxy, inner) or trained
        out.append(entry)
        log(f"[{i + 1}/{count}] {entry.name} {mix.label(2)}{_drift(ws, entry)}"
            + (f", trained in {time.perf_counter() - start:.0f} s" if trained else ", already trained"))
    return out


def _no_proxies(train_seed: int, asked: bool) -> str:
    """Why the set trains no trained proxies, for the header line."""
    if asked and train_seed:
        return "no trained proxies (repeats need none: validation pairs each with its mixture's)"
    return "no trained proxies"


def _quiet(line: str) -> None:
    """A log that keeps nothing."""


def _reference(ws: Workspace, i: int, mix: Mixture, rec: Recipe, with_proxy: bool,
               log: Log) -> tuple[ReferenceEntry, bool]:
    """Mixture ``i``'s reference at the recipe's training seed: the manifest's when one has its mixture and seed,
    else trained as :func:`_free_name`."""
    found = find_reference(ws, mix, seed=rec.cfg.seed)
    if found is not None:
        return found, False
    return train_entry(ws, _free_name(ws, i, mix, rec.cfg.seed, with_proxy), mix, rec, log=log, step_line=STEP_LINE)


def _free_name(ws: Workspace, i: int, mix: Mixture, seed: int, with_proxy: bool) -> str:
    """A name for mixture ``i``'s reference at ``seed``: at a seed S > 0 its seed-0 reference's name with ``-sS``
    when that is free, else the first ``ref-XX`` from ``ref-<i>`` on whose folders and manifest entries hold no other
    mixture (nor, for the repeat's ``ref-XX-sS``, another seed)."""
    first = find_reference(ws, mix) if seed else None
    if first is not None and not name_problem(ws, seeded_name(first.name, seed), mix, seed=seed):
        return seeded_name(first.name, seed)
    kinds = ("reference", "trained_proxy") if with_proxy else ("reference",)
    j = i
    while (any(name_problem(ws, f"{PREFIX}-{j:02d}", mix, kind=k) for k in kinds)
           or name_problem(ws, seeded_name(f"{PREFIX}-{j:02d}", seed), mix, seed=seed)):
        j += 1
    return seeded_name(f"{PREFIX}-{j:02d}", seed)


def _trained_proxy(ws: Workspace, name: str, mix: Mixture, rec: Recipe, log: Log) -> bool:
    """Train the mixture's trained proxy as ``trained_proxies/<name>`` unless the manifest has one; whether it
    trained now.

    Raises:
        ConfigError: ``trained_proxies/<name>`` holds a model of another mixture.
    """
    if find_reference(ws, mix, kind="trained_proxy") is not None:
        return False
    problem = name_problem(ws, name, mix, kind="trained_proxy")
    if problem:
        raise ConfigError(f"cannot train the trained proxy of reference {name} ({problem.split('; ')[0]}); move that "
                          "model away, or train without trained proxies (--no-trained-proxies)")
    return train_entry(ws, name, mix, rec, kind="trained_proxy", log=log, step_line=STEP_LINE)[1]


def _drift(ws: Workspace, entry: ReferenceEntry) -> str:
    """``  drift 3.1%`` from the reference's training record ('' when it records none)."""
    drift = read_training(ws.path(entry.path)).get("drift")
    return f"  drift {drift:.1%}" if isinstance(drift, (int, float)) else ""
