"""Validation of a table workspace: the predictor fitted on a study of past runs, as a proxy ("regression on S").

The references of a table workspace are runs at a larger scale, imported with their scores (``demix import-runs
--references``). For each study, the DeMix predictor (:class:`~demix_core.search.predictor.Predictor`) is fitted on
the study's runs and predicts every reference's scores; per metric, Spearman's rho and the pairwise accuracy (the
share of reference pairs it orders as they measured) say how well it ranks them, each with a bootstrap 95%
interval over the references (:mod:`demix_core.validation.stats`). When every metric belongs to one domain (RegMix's
``the_pile_arxiv_val_loss`` to ``train_the_pile_arxiv``), the weight-only null (a run's weight on that domain) is
the baseline, and the verdict is worded as for merged proxies. Scores are oriented: higher is better, a
lower-is-better metric negated, with each study's directions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demix_core.errors import ConfigError, StudyError
from demix_core.runs.advice import fit_label
from demix_core.runs.table_study import SUITE, TableSettings, oriented_metrics, table_settings
from demix_core.search.predictor import Predictor
from demix_core.search.storage import open_storage, storage_url, study_names
from demix_core.search.study import load_study
from demix_core.validation.methods import NULL
from demix_core.validation.report import ValidationReport, method_report
from demix_core.validation.stats import Figure, bootstrap
from demix_core.workspace.manifest import ReferenceEntry, Workspace

MIN_REFERENCES = 3
_STEM_MIN = 3  # a domain's name, less the prefix all domains share, matches a metric only when this long


def pairwise_accuracy(proxy: np.ndarray, reference: np.ndarray) -> float:
    """The share of reference pairs (of different scores) that ``proxy`` orders the same way; a proxy tie counts
    half. 1 is a perfect ranking, 0.5 a coin flip; nan when every reference scored the same."""
    p, r = np.asarray(proxy, dtype=float), np.asarray(reference, dtype=float)
    i, j = np.triu_indices(len(r), 1)
    dr = np.sign(r[i] - r[j])
    keep = dr != 0
    if not keep.any():
        return float("nan")
    dp = np.sign(p[i] - p[j])[keep]
    return float(np.mean(np.where(dp == 0, 0.5, (dp == dr[keep]).astype(float))))


def _macro_pairwise(proxy: np.ndarray, reference: np.ndarray) -> float:
    vals = [pairwise_accuracy(proxy[:, c], reference[:, c]) for c in range(reference.shape[1])]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def regression_name(study: str) -> str:
    """The proxy's name in a report: ``regression on <study>``."""
    return f"regression on {study}"


@dataclass
class TableValidationReport(ValidationReport):
    """A :class:`ValidationReport` of predictors fitted on table studies, with pairwise accuracy and each fit.

    ``reference_scores`` and ``method_scores`` are oriented (higher is better).
    """

    pairwise: dict[str, dict[str, Figure]] = field(default_factory=dict)  # method -> metric -> accuracy
    pairwise_macro: dict[str, Figure] = field(default_factory=dict)
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)  # study -> runs, regressor, out-of-fold rho
    higher: dict[str, bool] = field(default_factory=dict)  # metric -> higher is better (as the studies store it)

    def lines(self) -> list[str]:
        """The printable table: per metric rho and pairwise accuracy of each method, the macros, the fits."""
        out = [f"{len(self.references)} references, {len(self.domains)} metrics (oriented: higher is better), "
               "studies: " + ", ".join(f"{s} ({f['runs']} runs, {f['regressor']})" for s, f in self.fits.items())]
        width = max([len("macro pairwise accuracy"), *(len(f"pairwise {d}") for d in self.domains)]) + 2
        header = f"{'metric':<{width}}" + "".join(f"{m.name:>42}" for m in self.methods)
        out += [header, "-" * len(header)]

        def row(label: str, get: Callable[[Any], Figure]) -> None:
            out.append(f"{label:<{width}}" + "".join(f"{get(m).text():>42}" for m in self.methods))

        nan = Figure(float("nan"))
        for d in self.domains:
            row(f"rho {d}", lambda m, d=d: m.per_domain[d])  # type: ignore[misc]
            row(f"pairwise {d}", lambda m, d=d: self.pairwise.get(m.name, {}).get(d, nan))  # type: ignore[misc]
        row("macro rho", lambda m: m.macro)
        row("macro pairwise accuracy", lambda m: self.pairwise_macro.get(m.name, nan))
        row("top-25% macro rho", lambda m: m.top_macro)
        row("rho overall average", lambda m: m.average)
        for s, f in self.fits.items():
            out.append(f"fit on {s} (out-of-fold Spearman over its runs): " + ", ".join(
                f"{d} {v:.2f} {fit_label(v)}" for d, v in f["spearman"].items()))
        out.append(self.verdict())
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain data: the base report's, with ``kind: table``, pairwise accuracy, the fits and the directions."""
        def fig(f: Figure) -> dict[str, Any]:
            return {"value": f.value, "low": f.low, "high": f.high, "meaningful": f.meaningful}

        return {**super().to_json(), "kind": SUITE, "higher_is_better": self.higher, "fits": self.fits,
                "pairwise": {m: {d: fig(f) for d, f in per.items()} for m, per in self.pairwise.items()},
                "pairwise_macro": {m: fig(f) for m, f in self.pairwise_macro.items()}}


def _settings(study: Any) -> TableSettings:
    settings = table_settings(study)
    if settings is None:
        raise StudyError(f"study {study.study_name!r} holds no imported runs; give a study made by `demix import-runs`")
    return settings


def _studies(ws: Workspace, names: Sequence[str] | None, storage: str | None) -> list[Any]:
    url = storage_url(ws, storage)
    if names:
        found = [load_study(ws, n, storage=storage) for n in names]
    elif url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
        found = []
    else:
        found = [load_study(ws, n, storage=storage) for n in study_names(open_storage(url))]
    for s in found if names else []:
        _settings(s)
    found = [s for s in found if table_settings(s) is not None]
    if not found:
        raise StudyError(f"table workspace {ws.root} has no study of imported runs; import the small runs with "
                         "`demix import-runs --study S` first")
    return found


def _metrics(studies: Sequence[Any], refs: Sequence[ReferenceEntry]) -> tuple[list[str], dict[str, bool]]:
    """The metrics every study and every reference has, and their direction (the same in every study)."""
    first = _settings(studies[0])
    higher = dict(first.objectives.higher)
    metrics = [m for m in first.metrics if all(m in (r.scores or {}) for r in refs)]
    for s in studies[1:]:
        settings = _settings(s)
        metrics = [m for m in metrics if m in settings.metrics]
        for m in metrics:
            if settings.objectives.higher[m] != higher[m]:
                raise ConfigError(f"studies {studies[0].study_name!r} and {s.study_name!r} disagree on whether higher "
                                  f"{m} is better; validate them one at a time with --study")
    if not metrics:
        raise StudyError(f"the references share no metric with study {studies[0].study_name!r} (its metrics: "
                         f"{', '.join(first.metrics)}); import references scored on the same metrics")
    return metrics, higher


def _matching_domain(metric: str, domains: Sequence[str]) -> str | None:
    """The one domain a metric measures, by name (RegMix: ``train_the_pile_arxiv`` for ``the_pile_arxiv_val_loss``):
    the domain whose name, less the prefix every domain shares, is the longest found in the metric's name."""
    prefix = os.path.commonprefix(list(domains)) if len(domains) > 1 else ""
    cut = max(prefix.rfind(c) for c in "_:/-.") + 1 if prefix else 0
    stems = {d: d[cut:] for d in domains}
    hits = sorted((len(s), d) for d, s in stems.items() if len(s) >= _STEM_MIN and s in metric)
    if not hits or (len(hits) > 1 and hits[-1][0] == hits[-2][0]):
        return None
    return hits[-1][1]


def _null(refs: Sequence[ReferenceEntry], domains: Sequence[str],
          metrics: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The weight-only null: per metric, each reference's weight on the metric's domain; None unless every metric
    has a domain (a null over some metrics only would not compare fairly)."""
    match = {m: _matching_domain(m, domains) for m in metrics}
    if any(d is None for d in match.values()):
        return None
    return {m: np.array([float(r.mixture.get(str(d), 0.0)) for r in refs]) for m, d in match.items()}


def _pairwise(name: str, pred: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray], report: TableValidationReport,
              seed: int) -> None:
    report.pairwise[name] = {m: bootstrap(pairwise_accuracy, pred[m], ref[m], seed=seed) for m in ref}
    stacked_p, stacked_r = (np.stack([v[m] for m in ref], axis=1) for v in (pred, ref))
    report.pairwise_macro[name] = bootstrap(_macro_pairwise, stacked_p, stacked_r, seed=seed)


def validate_table(ws: Workspace, *, studies: Sequence[str] | None = None, storage: str | None = None, seed: int = 0,
                   log: Callable[[str], None] = print) -> TableValidationReport:
    """Fit the predictor on each table study and rank the workspace's references with it.

    Args:
        ws: A table workspace with at least 3 references.
        studies: The studies to validate (default: every study of imported runs in the storage).
        storage: Storage URL (default: the workspace's).
        seed: Seed of the fits and the bootstraps.
        log: Where progress lines go.

    Raises:
        StudyError: Too few references, no study of imported runs, or no metric shared by the studies and references.
        ConfigError: Two studies disagree on a metric's direction.
    """
    refs = [r for r in ws.references if r.kind == "reference"]
    if len(refs) < MIN_REFERENCES:
        raise StudyError(f"table workspace {ws.root} has {len(refs)} references; validation needs at least "
                         f"{MIN_REFERENCES} (import runs at a larger scale with `demix import-runs --references`)")
    found = _studies(ws, studies, storage)
    metrics, higher = _metrics(found, refs)
    ref_x = np.array([[float(r.mixture.get(n, 0.0)) for n in ws.component_names] for r in refs])
    ref_x = ref_x / ref_x.sum(axis=1, keepdims=True)
    reference = {m: np.array([float((r.scores or {})[m]) * (1 if higher[m] else -1) for r in refs]) for m in metrics}
    names = [regression_name(s.study_name) for s in found]
    report = TableValidationReport([r.name for r in refs], [dict(r.mixture) for r in refs], metrics,
                                   {m: v.tolist() for m, v in reference.items()}, [], suite=SUITE,
                                   proxies={s.study_name: n for s, n in zip(found, names)},
                                   higher={m: higher[m] for m in metrics})
    for study, name in zip(found, names):
        x, y = oriented_metrics(study, metrics)
        log(f"fitting the predictor on study {study.study_name}: {len(x)} runs, {len(metrics)} metrics")
        model = Predictor.fit(x, y, seed=seed)
        pred = model.predict(ref_x)
        report.methods.append(method_report(name, pred, reference, seed=seed, with_recovery=False))
        report.method_scores[name] = {m: v.tolist() for m, v in pred.items()}
        report.fits[study.study_name] = {"runs": len(x), "regressor": model.kind, "spearman": dict(model.spearman)}
        _pairwise(name, pred, reference, report, seed)
    null = _null(refs, ws.component_names, metrics)
    if null is not None:
        report.methods.append(method_report(NULL, null, reference, seed=seed, with_recovery=False))
        report.method_scores[NULL] = {m: v.tolist() for m, v in null.items()}
        _pairwise(NULL, null, reference, report, seed)
    return report
