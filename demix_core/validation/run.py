"""Run validation on a workspace: score every reference, both proxy kinds, the compute-matched trained
proxies and the weight-only null, and assemble the :class:`~demix_core.validation.report.ValidationReport`
(the paper's Table 2, with baselines)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from demix_core.proxy import get_kind, kind_names
from demix_core.validation.methods import NULL, TRAINED
from demix_core.validation.noise import measure_command, reference_noise
from demix_core.validation.report import ValidationReport, method_report, null_scores


def validate_workspace(ws: Any, *, suite: str | None = None, device: str = "auto", limit: int | None = None,
                       method: str = "linear", proxies: Sequence[str] | None = None,
                       log: Callable[[str], None] = print) -> ValidationReport:
    """Score every reference, its proxies (merged and/or output ensemble), its trained proxy (if any), and the
    null model. Progress lines start with ``[i/n]``.

    Args:
        ws: The workspace (with at least 3 references).
        suite: ``quick`` or ``paper`` (default: the workspace's).
        device: ``auto``, ``cpu``, ``cuda``.
        limit: Documents per lm-eval task.
        method: Merge method of the merged proxies.
        proxies: Proxy kinds to validate (``merge``, ``ensemble``), in report order (default: every registered kind).
        log: Where progress lines go.
    """
    if getattr(ws, "is_table", False):  # a table of past runs: the predictor fitted on each study is the proxy
        from demix_core.validation.regression import validate_table

        return validate_table(ws, log=log)
    from demix_core.engine import Engine
    from demix_core.errors import StudyError
    from demix_core.workspace.records import read_plan

    kinds = list(dict.fromkeys(get_kind(k).name for k in (kind_names() if proxies is None else proxies)))
    if not kinds:
        raise StudyError("no proxy kind to validate; give merge, ensemble or both")
    plan = read_plan(ws)
    refs, loop_refs = _split_references(ws, plan)
    engine = Engine(ws, suite=suite, device=device, limit=limit)
    domains = engine.suite.domains
    scored = _score_references(ws, engine, refs, kinds, method, log)
    reference = {d: np.array(v) for d, v in scored.reference.items()}
    named = {k: get_kind(k).report_name for k in kinds}
    methods = [method_report(named[k], {d: np.array(v) for d, v in scored.proxy[k].items()}, reference)
               for k in kinds]
    scores: dict[str, dict[str, list[float]]] = {named[k]: scored.proxy[k] for k in kinds}
    if scored.trained is not None:
        methods.append(method_report(TRAINED, {d: np.array(v) for d, v in scored.trained.items()}, reference))
        scores[TRAINED] = scored.trained
    null = null_scores([r.mixture for r in refs], ws.domains(), domains)
    methods.append(method_report(NULL, null, reference, with_recovery=False))
    scores[NULL] = {d: list(map(float, v)) for d, v in null.items()}
    by_name = _loop_scores(ws, engine, refs, loop_refs, scored.reference, log)
    every = [*refs, *loop_refs]
    noise = reference_noise(ws.component_names, [r.mixture for r in every],
                            {d: [by_name[r.name][d] for r in every] for d in domains})
    loop = None
    if plan is not None:
        from demix_core.validation.loop import workspace_loop

        loop = workspace_loop(ws, [r.name for r in refs], by_name, domains, floor=noise.spread or None,
                              floor_df=(noise.runs - noise.mixtures) or None)
    return ValidationReport([r.name for r in refs], [dict(r.mixture) for r in refs], domains,
                            {d: list(v) for d, v in scored.reference.items()}, methods,
                            {c.name: c.drift for c in ws.components}, engine.suite.name, scores,
                            named, loop, noise, measure_command(ws.root, ws.component_names))


def _split_references(ws: Any, plan: Any) -> tuple[list[Any], list[Any]]:
    """(references to rank against, the loop's trained models): the loop's models are what is tested, not
    references.

    Raises:
        StudyError: Fewer than 3 references.
    """
    from demix_core.errors import StudyError

    loop_names = plan.all_names() if plan is not None else set()
    every = [r for r in ws.references if r.kind == "reference"]
    refs = [r for r in every if r.name not in loop_names]
    if len(refs) < 3:
        raise StudyError(f"workspace has {len(refs)} reference models; validation needs at least 3 (train them "
                         f"with `demix workspace train-references {ws.root} --count 16`, or add models trained "
                         "elsewhere with `demix workspace add-reference`)")
    return refs, [r for r in every if r.name in loop_names]


@dataclass
class _Scored:
    """Per domain, one score per reference: the reference itself, each proxy kind's, the trained proxies'
    (None unless every reference has one)."""

    reference: dict[str, list[float]]
    proxy: dict[str, dict[str, list[float]]]
    trained: dict[str, list[float]] | None


def _score_references(ws: Any, engine: Any, refs: Sequence[Any], kinds: Sequence[str], method: str,
                      log: Callable[[str], None]) -> _Scored:
    """Score every reference, its proxy of each kind, and its compute-matched trained proxy where there is one."""
    trained = _match_trained(refs, [r for r in ws.references if r.kind == "trained_proxy"])
    domains = engine.suite.domains
    for k in kinds:  # what a kind builds once (the output ensemble's log-probs), before the references
        if get_kind(k).preparing:
            log(f"[0/{len(refs)}] {get_kind(k).label}: {get_kind(k).preparing}")
            engine.kind(k).prepare()
    ref_s: dict[str, list[float]] = {d: [] for d in domains}
    proxy_s: dict[str, dict[str, list[float]]] = {k: {d: [] for d in domains} for k in kinds}
    trained_s: dict[str, list[float]] = {d: [] for d in domains}
    for i, r in enumerate(refs, 1):
        rs = engine.score_checkpoint(ws.path(r.path)).domains
        mix = engine.mixture(r.mixture)
        got = {k: engine.evaluate(mix, method=method, proxy=k).scores.domains for k in kinds}
        for d in domains:
            ref_s[d].append(rs[d])
            for k in kinds:
                proxy_s[k][d].append(got[k][d])
        if r.name in trained:
            ts = engine.score_checkpoint(ws.path(trained[r.name].path)).domains
            for d in domains:
                trained_s[d].append(ts[d])
        log(f"[{i}/{len(refs)}] {r.name}: " + " ".join(
            f"{d} ref {rs[d]:.3f} " + " ".join(f"{k} {got[k][d]:.3f}" for k in kinds) for d in domains))
    complete = bool(trained) and all(len(v) == len(refs) for v in trained_s.values())
    return _Scored(ref_s, proxy_s, trained_s if complete else None)


def _loop_scores(ws: Any, engine: Any, refs: Sequence[Any], loop_refs: Sequence[Any],
                 ref_s: Mapping[str, list[float]], log: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Every model's domain scores by name: the references' (already scored) and the loop's trained models'."""
    domains = engine.suite.domains
    by_name = {r.name: {d: ref_s[d][i] for d in domains} for i, r in enumerate(refs)}
    for i, r in enumerate(loop_refs, 1):
        by_name[r.name] = engine.score_checkpoint(ws.path(r.path)).domains
        log(f"[{i}/{len(loop_refs)}] loop model {r.name}: " + " ".join(
            f"{d} {by_name[r.name][d]:.3f}" for d in domains))
    return by_name


def _match_trained(refs: Sequence[Any], trained: Sequence[Any]) -> dict[str, Any]:
    """Each reference's compute-matched trained proxy: the one with its name, else the one with its mixture."""
    by_name = {t.name: t for t in trained}

    def key(mix: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((c, round(float(w), 6)) for c, w in mix.items() if w > 0))

    by_mix = {key(t.mixture): t for t in trained}
    out = {}
    for r in refs:
        match = by_name.get(r.name) or by_mix.get(key(r.mixture))
        if match is not None:
            out[r.name] = match
    return out


