"""The Validate page of a table workspace: the predictor fitted on each study (the proxy "regression on S") ranks
the table's references; per metric, Spearman's rho and the pairwise accuracy with their bootstrap 95% intervals,
beside the weight-only null, and the verdict.

It is what ``demix validate`` computes (:func:`~demix_core.validation.regression.validate_table`, same seed), run in
the dashboard's process (seconds: no model is scored) and cached per (manifest, runs of every study), so a viewer
sees it too and nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.state import Workspace, finished_trials, md, study_names
from demix_core.errors import DemixError
from demix_core.runs.advice import fit_label
from demix_core.validation.regression import MIN_REFERENCES, validate_table
from demix_core.validation.stats import Figure
from demix_core.view import figures
from demix_core.workspace.manifest import MANIFEST, load_workspace

__all__ = ["MIN_REFERENCES", "fit_lines", "method_figures", "summary_frame", "validation"]


def _fingerprint(ws: Workspace) -> tuple[int, tuple[tuple[str, int], ...]]:
    """What the validation depends on: the manifest (the references) and each study's number of runs."""
    root, storage = str(ws.root), ws.storage_url()
    return ((ws.root / MANIFEST).stat().st_mtime_ns, tuple((s, finished_trials(root, storage, s))
                                                          for s in study_names(ws)))


@st.cache_data(show_spinner="Fitting the predictor on each study and ranking the references...", max_entries=16)
def _validation(root: str, key: tuple[Any, ...]) -> dict[str, Any] | str:
    try:
        return validate_table(load_workspace(root), log=lambda line: None).to_json()
    except DemixError as exc:
        return str(exc)


def validation(ws: Workspace) -> dict[str, Any] | str:
    """The validation's plain data (:meth:`~demix_core.validation.regression.TableValidationReport.to_json`), or
    why there is none, in one line."""
    return _validation(str(ws.root), _fingerprint(ws))


def _text(f: Mapping[str, Any]) -> str:
    return Figure(float(f["value"]), float(f["low"]), float(f["high"]), bool(f.get("meaningful", True))).text()


def summary_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    """One row per metric and figure (rho, pairwise accuracy; then the macros), one column per method:
    ``value [low, high]`` (bootstrap 95% interval over the references)."""
    rows: dict[str, dict[str, str]] = {}
    for m in data["methods"]:
        name = m["name"]
        pairwise = data["pairwise"].get(name, {})
        for d in data["domains"]:
            rows.setdefault(f"rho {d}", {})[name] = _text(m["rho"][d])
            rows.setdefault(f"pairwise accuracy {d}", {})[name] = _text(pairwise[d]) if d in pairwise else "n/a"
        rows.setdefault("macro rho", {})[name] = _text(m["macro"])
        macro = data["pairwise_macro"].get(name)
        rows.setdefault("macro pairwise accuracy", {})[name] = _text(macro) if macro else "n/a"
    return pd.DataFrame.from_dict(rows, orient="index")


def fit_lines(data: Mapping[str, Any]) -> list[str]:
    """Per study: its runs, regressor and each metric's out-of-fold Spearman with the fit label (markdown-safe)."""
    out = []
    for study, fit in data["fits"].items():
        shown = ", ".join(f"{md(d)} {v:.2f} ({fit_label(v)})" if not math.isnan(v) else f"{md(d)} n/a"
                          for d, v in fit["spearman"].items())
        out.append(f"Fit on {md(study)} ({fit['runs']} runs, {fit['regressor']}), out-of-fold Spearman: {shown}")
    return out


def method_figures(data: Mapping[str, Any], name: str) -> list[tuple[str, go.Figure]]:
    """(metric, figure) per metric: the method's predicted scores against the references', as imported (a
    lower-is-better metric back to its own sign), titled with its rho."""
    method = next(m for m in data["methods"] if m["name"] == name)
    out = []
    for d in data["domains"]:
        sign = 1.0 if data["higher_is_better"].get(d, False) else -1.0
        x = [sign * v for v in data["method_scores"][name][d]]
        y = [sign * v for v in data["reference_scores"][d]]
        rho = method["rho"][d]["value"]
        shown = "n/a" if math.isnan(rho) else f"{rho:.2f}"
        out.append((d, figures.scatter_with_identity(x, y, labels=data["references"], x_title=f"{name}: {d}",
                                                     y_title=f"reference {d}", title=f"{d}: rho {shown}")))
    return out
