"""Rank consistency of proxies against reference models (the paper's Table 2), with baselines.

Pure metric functions take plain arrays (one row per reference), so each can be checked by hand;
:func:`validate_workspace` scores the models and assembles the report.

Capability recovery is ``sum(proxy) / sum(reference)`` on positive, higher-is-better quantities. Our
domain scores are negated bits-per-byte (higher is better, negative), so for them recovery is
``sum(reference BPB) / sum(proxy BPB)``: 1.0 means the proxies are as good as the references,
below 1 that they are worse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

TOP_FRACTION = 0.25
MIN_TOP = 4


def ranks(values: ArrayLike) -> np.ndarray:
    """1-based ranks, ties given their average rank (as ``scipy.stats.rankdata``)."""
    a = np.asarray(values, dtype=float)
    out = np.empty(len(a))
    out[a.argsort(kind="mergesort")] = np.arange(1, len(a) + 1)
    _, inverse, count = np.unique(a, return_inverse=True, return_counts=True)
    if len(count) < len(a):
        out = (np.bincount(inverse, weights=out) / count)[inverse]
    return out


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation: Pearson's r of the ranks (nan when a side is constant or has < 2 points).

    Written with numpy (equal to ``scipy.stats.spearmanr``) because bootstraps call it tens of thousands of times.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(np.clip((ra @ rb) / np.sqrt((ra @ ra) * (rb @ rb)), -1.0, 1.0))


def top_spearman(proxy: ArrayLike, reference: ArrayLike,
                 fraction: float = TOP_FRACTION) -> tuple[float, int]:
    """Spearman on the references in the top ``fraction`` by reference score; (rho, how many)."""
    ref = np.asarray(reference, dtype=float)
    k = max(1, math.ceil(len(ref) * fraction))
    top = np.argsort(-ref)[:k]
    return spearman(np.asarray(proxy, dtype=float)[top], ref[top]), k


def recovery(proxy: ArrayLike, reference: ArrayLike) -> float:
    """Capability recovery: proxy capability as a fraction of the reference's (see module doc)."""
    p, r = float(np.sum(proxy)), float(np.sum(reference))
    if r == 0 or p == 0:
        return float("nan")
    return p / r if r > 0 else r / p


def spread_ratio(proxy: ArrayLike, reference: ArrayLike) -> float:
    """Range of proxy scores / range of reference scores."""
    rr = float(np.ptp(reference))
    return float(np.ptp(proxy)) / rr if rr > 0 else float("nan")


@dataclass
class Figure:
    """A metric with its bootstrap 95% interval and whether it is meaningful."""

    value: float
    low: float = float("nan")
    high: float = float("nan")
    meaningful: bool = True

    def text(self) -> str:
        """``0.81 [0.62, 0.93]`` (or ``n/a``)."""
        if math.isnan(self.value):
            return "n/a"
        s = f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"
        return s + " (n<4: not meaningful)" if not self.meaningful else s


def bootstrap(metric: Callable[[np.ndarray, np.ndarray], float], proxy: np.ndarray, reference: np.ndarray, *,
              n: int = 1000, seed: int = 0) -> Figure:
    """The metric and its percentile 95% interval over references resampled with replacement."""
    value = metric(proxy, reference)
    rng = np.random.default_rng(seed)
    m = len(reference)
    draws = []
    for _ in range(n):
        idx = rng.integers(0, m, m)
        v = metric(proxy[idx], reference[idx])
        if not math.isnan(v):
            draws.append(v)
    if not draws:
        return Figure(value)
    return Figure(value, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


@dataclass
class MethodReport:
    """The paper's metrics for one way of predicting reference scores (merged proxies or a baseline)."""

    name: str
    per_domain: dict[str, Figure]
    macro: Figure
    top: dict[str, Figure]
    top_macro: Figure
    recovery: dict[str, Figure]
    average: Figure
    spread: dict[str, float]


def macro_rho(proxy: np.ndarray, reference: np.ndarray) -> float:
    """Mean over columns (domains) of Spearman rho, skipping columns where it is undefined."""
    vals = [spearman(proxy[:, i], reference[:, i]) for i in range(reference.shape[1])]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def method_report(name: str, proxy: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], *,
                  seed: int = 0, with_recovery: bool = True) -> MethodReport:
    """All metrics for one predictor; ``proxy`` and ``reference`` map domain -> (n_references,)."""
    domains = list(reference)
    per = {d: bootstrap(spearman, proxy[d], reference[d], seed=seed) for d in domains}
    top = {}
    for d in domains:
        rho, k = top_spearman(proxy[d], reference[d])
        fig = bootstrap(lambda p, r: top_spearman(p, r)[0], proxy[d], reference[d], seed=seed)
        fig.value, fig.meaningful = rho, k >= MIN_TOP
        top[d] = fig
    stacked_p = np.stack([proxy[d] for d in domains], axis=1)
    stacked_r = np.stack([reference[d] for d in domains], axis=1)

    def top_macro_fn(p: np.ndarray, r: np.ndarray) -> float:
        vals = [top_spearman(p[:, i], r[:, i])[0] for i in range(len(domains))]
        vals = [v for v in vals if not math.isnan(v)]
        return float(np.mean(vals)) if vals else float("nan")

    macro = bootstrap(macro_rho, stacked_p, stacked_r, seed=seed)
    top_macro = bootstrap(top_macro_fn, stacked_p, stacked_r, seed=seed)
    top_macro.meaningful = math.ceil(len(stacked_r) * TOP_FRACTION) >= MIN_TOP
    rec = {d: bootstrap(recovery, proxy[d], reference[d], seed=seed) if with_recovery else Figure(float("nan"))
           for d in domains}
    avg = bootstrap(spearman, stacked_p.mean(axis=1), stacked_r.mean(axis=1), seed=seed)
    spread = {d: spread_ratio(proxy[d], reference[d]) for d in domains}
    return MethodReport(name, per, macro, top, top_macro, rec, avg, spread)


def null_scores(mixtures: Sequence[Mapping[str, float]], domain_of: Mapping[str, str],
                domains: Sequence[str]) -> dict[str, np.ndarray]:
    """The weight-only null model: a mixture's score on a domain is its total weight on that domain."""
    return {d: np.array([sum(w for c, w in m.items() if domain_of.get(c) == d) for m in mixtures]) for d in domains}


@dataclass
class ValidationReport:
    """Merged proxies and baselines against the references."""

    references: list[str]
    mixtures: list[dict[str, float]]
    domains: list[str]
    reference_scores: dict[str, list[float]]
    methods: list[MethodReport]
    drift: dict[str, float | None] = field(default_factory=dict)
    suite: str = ""
    method_scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def macro_difference(self, baseline: str, *, n: int = 1000, seed: int = 0) -> Figure:
        """Macro rho of the merged proxies minus a baseline's, with a paired bootstrap 95% interval (the same
        resampled references for both), or ``Figure(nan)`` when the scores are not in the report."""
        merged, other = self.methods[0].name, baseline
        if merged not in self.method_scores or other not in self.method_scores:
            return Figure(float("nan"))
        ref = np.stack([np.asarray(self.reference_scores[d], dtype=float) for d in self.domains], axis=1)
        a = np.stack([np.asarray(self.method_scores[merged][d], dtype=float) for d in self.domains], axis=1)
        b = np.stack([np.asarray(self.method_scores[other][d], dtype=float) for d in self.domains], axis=1)
        value = macro_rho(a, ref) - macro_rho(b, ref)
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(n):
            idx = rng.integers(0, len(ref), len(ref))
            d = macro_rho(a[idx], ref[idx]) - macro_rho(b[idx], ref[idx])
            if not math.isnan(d):
                draws.append(d)
        if not draws or math.isnan(value):
            return Figure(value)
        return Figure(value, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))

    def verdict(self) -> str:
        """One plain sentence: do the merged proxies beat both baselines on macro rho, beyond the noise of
        this many references (a paired bootstrap of the difference)?"""
        merged = self.methods[0]
        if math.isnan(merged.macro.value):
            return "Verdict: not enough spread among references to rank them."
        diffs = {o.name: self.macro_difference(o.name) for o in self.methods[1:] if not math.isnan(o.macro.value)}
        if not diffs:
            return f"Verdict: no baseline to compare with; merged proxies macro rho {merged.macro.value:.2f}."

        def text(name: str) -> str:
            d = diffs[name]
            return f"{name} by {d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}]" if not math.isnan(d.low) else \
                f"{name} by {d.value:+.2f}"

        lost = [k for k, d in diffs.items() if d.value <= 0 and not (d.low <= 0 <= d.high and d.low < d.high)]
        won = [k for k, d in diffs.items() if d.value > 0 and d.low > 0]
        if len(won) == len(diffs):
            return (f"Verdict: merged proxies beat {' and '.join(text(k) for k in won)} on macro rho "
                    f"({merged.macro.value:.2f}; difference with its paired 95% interval); they can be trusted to "
                    "rank mixtures here.")
        if lost:
            return (f"Verdict: merged proxies do NOT beat {', '.join(text(k) for k in lost)} on macro rho "
                    f"({merged.macro.value:.2f}); check more references or the suite before trusting them.")
        return (f"Verdict: inconclusive with {len(self.references)} references: macro rho {merged.macro.value:.2f}; "
                f"merged proxies vs {', '.join(text(k) for k in diffs)} (a paired 95% interval that includes 0 "
                "is not a win); add references before trusting them.")

    def lines(self) -> list[str]:
        """The printable table."""
        out = [f"{len(self.references)} references, suite {self.suite}, domains: {', '.join(self.domains)}"]
        if self.drift:
            out.append("component drift from base: " + ", ".join(
                f"{k} {v:.1%}" if v is not None else f"{k} n/a" for k, v in self.drift.items()))
        header = f"{'metric':<22}" + "".join(f"{m.name:>34}" for m in self.methods)
        out.append(header)
        out.append("-" * len(header))

        def row(label: str, get: Callable[[MethodReport], Figure]) -> None:
            out.append(f"{label:<22}" + "".join(f"{get(m).text():>34}" for m in self.methods))

        for d in self.domains:
            row(f"rho {d}", lambda m, d=d: m.per_domain[d])  # type: ignore[misc]
        row("macro rho", lambda m: m.macro)
        for d in self.domains:
            row(f"top-25% rho {d}", lambda m, d=d: m.top[d])  # type: ignore[misc]
        row("top-25% macro rho", lambda m: m.top_macro)
        row("rho overall average", lambda m: m.average)
        for d in self.domains:
            row(f"recovery {d}", lambda m, d=d: m.recovery[d])  # type: ignore[misc]
        for d in self.domains:
            out.append(f"{'spread ratio ' + d:<22}" + "".join(
                f"{(f'{m.spread[d]:.2f}' if not math.isnan(m.spread[d]) else 'n/a'):>34}" for m in self.methods))
        out.append(self.verdict())
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        def fig(f: Figure) -> dict[str, Any]:
            return {"value": f.value, "low": f.low, "high": f.high, "meaningful": f.meaningful}

        return {
            "references": self.references, "mixtures": self.mixtures, "domains": self.domains, "suite": self.suite,
            "reference_scores": self.reference_scores, "method_scores": self.method_scores, "drift": self.drift,
            "verdict": self.verdict(),
            "methods": [{"name": m.name, "rho": {d: fig(f) for d, f in m.per_domain.items()}, "macro": fig(m.macro),
                         "top25": {d: fig(f) for d, f in m.top.items()}, "top25_macro": fig(m.top_macro),
                         "recovery": {d: fig(f) for d, f in m.recovery.items()}, "average_rho": fig(m.average),
                         "spread": m.spread} for m in self.methods],
        }


def validate_workspace(ws: Any, *, suite: str | None = None, device: str = "auto", limit: int | None = None,
                       method: str = "linear", log: Callable[[str], None] = print) -> ValidationReport:
    """Score every reference, its merged proxy, its trained proxy (if any), and the null model."""
    from demix_core.engine import Engine
    from demix_core.errors import StudyError

    refs = [r for r in ws.references if r.kind == "reference"]
    if len(refs) < 3:
        raise StudyError(f"workspace has {len(refs)} reference models; validation needs at least 3 "
                         "(train them with `demix demo --references 16`)")
    trained = _match_trained(refs, [r for r in ws.references if r.kind == "trained_proxy"])
    engine = Engine(ws, suite=suite, device=device, limit=limit)
    domains = engine.suite.domains
    ref_s: dict[str, list[float]] = {d: [] for d in domains}
    merged_s: dict[str, list[float]] = {d: [] for d in domains}
    trained_s: dict[str, list[float]] = {d: [] for d in domains}
    for r in refs:
        rs = engine.score_checkpoint(ws.path(r.path)).domains
        ms = engine.evaluate(engine.mixture(r.mixture), method=method).scores.domains
        for d in domains:
            ref_s[d].append(rs[d])
            merged_s[d].append(ms[d])
        if r.name in trained:
            ts = engine.score_checkpoint(ws.path(trained[r.name].path)).domains
            for d in domains:
                trained_s[d].append(ts[d])
        log(f"  {r.name}: " + " ".join(f"{d} ref {rs[d]:.3f} proxy {ms[d]:.3f}" for d in domains))
    reference = {d: np.array(v) for d, v in ref_s.items()}
    methods = [method_report("merged proxies (DeMix)", {d: np.array(v) for d, v in merged_s.items()}, reference)]
    if all(len(v) == len(refs) for v in trained_s.values()) and trained:
        methods.append(method_report("trained proxies (compute-matched)",
                                     {d: np.array(v) for d, v in trained_s.items()}, reference))
    domain_of = ws.domains()
    null = null_scores([r.mixture for r in refs], domain_of, domains)
    methods.append(method_report("null: domain weight", null, reference, with_recovery=False))
    scores = {"merged proxies (DeMix)": merged_s,
              "null: domain weight": {d: list(map(float, v)) for d, v in null.items()}}
    if len(methods) == 3:
        scores["trained proxies (compute-matched)"] = trained_s
    return ValidationReport([r.name for r in refs], [dict(r.mixture) for r in refs], domains,
                            {d: list(v) for d, v in ref_s.items()}, methods,
                            {c.name: c.drift for c in ws.components}, engine.suite.name, scores)


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
