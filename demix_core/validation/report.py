"""The validation report: per-method rank consistency, the proxy kind to trust, and its record.

:meth:`ValidationReport.pick` names the proxy kind to trust (the higher macro rho, with the paired
bootstrap interval of the difference), which :func:`record_validation` writes to
``<workspace>/validation/<suite>.json`` (:mod:`demix_core.workspace.records`), the one place new studies
read it from.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demix_core.proxy import DEFAULT_KIND
from demix_core.validation.explain import explanation
from demix_core.validation.noise import floor_json, floor_line
from demix_core.validation.stats import (
    MIN_TOP,
    TOP_FRACTION,
    Figure,
    _diff_text,
    bootstrap,
    macro_rho,
    outcome,
    paired_difference,
    recovery,
    spearman,
    spread_ratio,
    top_spearman,
)
from demix_core.workspace.records import record_path


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
class ProxyPick:
    """The proxy kind validation says to trust for a workspace and suite, and why.

    Attributes:
        proxy: ``merge`` or ``ensemble``.
        suite: The suite it was validated on.
        macro: Its macro rho.
        versus: Its macro rho minus the other proxy kind's, with the paired 95% interval (nan: one kind validated).
        clear: Whether that interval lies above 0 (else the two kinds are within noise and the higher point
            estimate decides).
        baselines: Baseline name -> its macro rho minus the baseline's (paired interval).
        references: How many references.
    """

    proxy: str
    suite: str
    macro: float
    versus: Figure
    clear: bool
    baselines: dict[str, Figure]
    references: int

    def to_json(self) -> dict[str, Any]:
        """Plain data (what the record file and ``--json`` carry)."""
        def fig(f: Figure) -> dict[str, Any]:
            return {"value": f.value, "low": f.low, "high": f.high}

        return {"proxy": self.proxy, "suite": self.suite, "macro": self.macro, "versus": fig(self.versus),
                "clear": self.clear,
                "baselines": {k: {**fig(v), "outcome": outcome(v)} for k, v in self.baselines.items()},
                "references": self.references}


@dataclass
class ValidationReport:
    """Proxies (merged, output ensemble) and baselines (trained proxies, the weight-only null) against the references.

    ``proxies`` maps each validated proxy kind to its method's name; empty means the first method is the
    (only) proxy.
    """

    references: list[str]
    mixtures: list[dict[str, float]]
    domains: list[str]
    reference_scores: dict[str, list[float]]
    methods: list[MethodReport]
    drift: dict[str, float | None] = field(default_factory=dict)
    suite: str = ""
    method_scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    proxies: dict[str, str] = field(default_factory=dict)
    loop: Any = None  # a validation.loop.LoopReport when a recommendation was trained (`demix recommend --train`)
    noise: Any = None  # a runs.noise.NoiseFloor of the repeated mixtures (validation.noise.reference_noise)
    noise_command: str = ""  # the command that measures the floor ('': the floor is not measured for this report)

    def _proxy_names(self) -> dict[str, str]:
        return self.proxies or {DEFAULT_KIND: self.methods[0].name}

    def _method(self, name: str) -> MethodReport:
        return next(m for m in self.methods if m.name == name)

    def _stacked(self, name: str) -> np.ndarray:
        return np.stack([np.asarray(self.method_scores[name][d], dtype=float) for d in self.domains], axis=1)

    def difference(self, first: str, second: str, *, n: int = 1000, seed: int = 0) -> Figure:
        """Macro rho of method ``first`` minus method ``second``'s, with a paired bootstrap 95% interval (the same
        resampled references for both), or ``Figure(nan)`` when either's scores are not in the report."""
        if first not in self.method_scores or second not in self.method_scores:
            return Figure(float("nan"))
        ref = np.stack([np.asarray(self.reference_scores[d], dtype=float) for d in self.domains], axis=1)
        return paired_difference(macro_rho, self._stacked(first), self._stacked(second), ref, n=n, seed=seed)

    def macro_difference(self, baseline: str, *, n: int = 1000, seed: int = 0) -> Figure:
        """Macro rho of the first proxy minus a baseline's, with its paired 95% interval (see :meth:`difference`)."""
        return self.difference(self.methods[0].name, baseline, n=n, seed=seed)

    def baselines(self) -> list[MethodReport]:
        """The methods that are not proxies (trained proxies, the null), with a macro rho."""
        names = set(self._proxy_names().values())
        return [m for m in self.methods if m.name not in names and not math.isnan(m.macro.value)]

    def pick(self) -> ProxyPick | None:
        """The proxy kind to trust: the higher macro rho; ``clear`` when the paired interval of the difference
        lies above 0. None when no proxy kind has a macro rho (references without spread). Computed once."""
        if "_pick" not in self.__dict__:
            self.__dict__["_pick"] = self._pick()
        return self.__dict__["_pick"]  # type: ignore[no-any-return]

    def _pick(self) -> ProxyPick | None:
        kinds = {k: n for k, n in self._proxy_names().items() if not math.isnan(self._method(n).macro.value)}
        if not kinds:
            return None
        best = max(kinds, key=lambda k: (self._method(kinds[k]).macro.value, k == DEFAULT_KIND))
        others = [k for k in kinds if k != best]
        versus = self.difference(kinds[best], kinds[others[0]]) if others else Figure(float("nan"))
        clear = bool(others) and not math.isnan(versus.low) and versus.low > 0
        base = {m.name: self.difference(kinds[best], m.name) for m in self.baselines()}
        return ProxyPick(best, self.suite, self._method(kinds[best]).macro.value, versus, clear, base,
                         len(self.references))

    def verdict(self) -> str:
        """Plain sentences: which proxy kind to trust here (two kinds validated), and whether it beats the
        baselines on macro rho beyond the noise of this many references (paired bootstrap of the difference)."""
        if len(self._proxy_names()) > 1:
            return self._two_proxy_verdict()
        merged = self.methods[0]
        label = merged.name
        if math.isnan(merged.macro.value):
            return "Verdict: not enough spread among references to rank them."
        diffs = {o.name: self.macro_difference(o.name) for o in self.baselines()}
        if not diffs:
            return f"Verdict: no baseline to compare with; {label} macro rho {merged.macro.value:.2f}."

        def text(name: str) -> str:
            return f"{name} by {_diff_text(diffs[name])}"

        lost = [k for k, d in diffs.items() if d.value <= 0 and not (d.low <= 0 <= d.high and d.low < d.high)]
        won = [k for k, d in diffs.items() if d.value > 0 and d.low > 0]
        if len(won) == len(diffs):
            return (f"Verdict: {label} beat {' and '.join(text(k) for k in won)} on macro rho "
                    f"({merged.macro.value:.2f}; difference with its paired 95% interval); they can be trusted to "
                    "rank mixtures here.")
        if lost:
            return (f"Verdict: {label} do NOT beat {', '.join(text(k) for k in lost)} on macro rho "
                    f"({merged.macro.value:.2f}); check more references or the suite before trusting them.")
        return (f"Verdict: inconclusive with {len(self.references)} references: macro rho {merged.macro.value:.2f}; "
                f"{label} vs {', '.join(text(k) for k in diffs)} (a paired 95% interval that includes 0 "
                "is not a win); add references before trusting them.")

    def _two_proxy_verdict(self) -> str:
        pick = self.pick()
        if pick is None:
            return "Verdict: not enough spread among references to rank them; no proxy kind can be chosen."
        names = self._proxy_names()
        other = next(k for k in names if k != pick.proxy)
        chosen, rival = names[pick.proxy], names[other]
        if math.isnan(pick.versus.value):
            why = f"{rival} could not be ranked"
        elif pick.clear:
            why = (f"macro rho {pick.macro:.2f} against {self._method(rival).macro.value:.2f} for {rival}, "
                   f"difference {_diff_text(pick.versus)} (paired 95% interval, {pick.references} references)")
        else:
            why = (f"macro rho {pick.macro:.2f} against {self._method(rival).macro.value:.2f} for {rival}, "
                   f"difference {_diff_text(pick.versus)}: within the noise of {pick.references} references, so "
                   "the higher estimate decides")
        out = f"Verdict: trust the {pick.proxy} proxy ({chosen}) for this workspace on suite {self.suite}: {why}."
        parts = []
        for name, d in pick.baselines.items():
            result = outcome(d)
            word = {"beat": "beats", "not beat": "does NOT beat", "inconclusive": "is inconclusive against"}[result]
            parts.append(f"it {word} {name} ({_diff_text(d)})")
        if parts:
            out += " Against the baselines, " + "; ".join(parts) + "."
            if all(outcome(d) != "beat" for d in pick.baselines.values()):
                out += " No proxy adds information beyond the baselines here: add references or use another suite."
        return out

    def lines(self) -> list[str]:
        """The printable table."""
        out = [f"{len(self.references)} references, suite {self.suite}, domains: {', '.join(self.domains)}"]
        if self.drift:
            out.append("component drift from base: " + ", ".join(
                f"{k} {v:.1%}" if v is not None else f"{k} n/a" for k, v in self.drift.items()))
        if self.noise_command:
            out.append(floor_line(self.noise, self.noise_command))
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
        if self.loop is not None:
            out.append("")
            out.append(f"the loop: trained models of the recommendation (study {self.loop.study}) and of baselines, "
                       "ranked among the other references by the DeMix composite")
            out.extend(self.loop.lines())
        out.extend(explanation(self.to_json()))
        out.append(self.verdict())
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        def fig(f: Figure) -> dict[str, Any]:
            return {"value": f.value, "low": f.low, "high": f.high, "meaningful": f.meaningful}

        pick = self.pick()
        floor, reason = (floor_json(self.noise, self.noise_command) if self.noise_command
                         else (None, "not measured for this kind of workspace"))
        return {
            "noise_floor": floor, "noise_reason": reason,
            "references": self.references, "mixtures": self.mixtures, "domains": self.domains, "suite": self.suite,
            "reference_scores": self.reference_scores, "method_scores": self.method_scores, "drift": self.drift,
            "proxies": self._proxy_names(), "pick": pick.to_json() if pick is not None else None,
            "verdict": self.verdict(), "loop": self.loop.to_json() if self.loop is not None else None,
            "methods": [{"name": m.name, "rho": {d: fig(f) for d, f in m.per_domain.items()}, "macro": fig(m.macro),
                         "top25": {d: fig(f) for d, f in m.top.items()}, "top25_macro": fig(m.top_macro),
                         "recovery": {d: fig(f) for d, f in m.recovery.items()}, "average_rho": fig(m.average),
                         "spread": m.spread} for m in self.methods],
        }


def record_validation(ws: Any, report: ValidationReport) -> Path:
    """Write the report and its proxy pick to :func:`record_path` (atomically); new studies read the pick."""
    from demix_core.io.atomic import atomic_write_text

    data = {"written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "written_unix": time.time(), "lines": report.lines(),
            **report.to_json()}
    return atomic_write_text(record_path(ws, report.suite), json.dumps(data, indent=1, default=float) + "\n")
