"""A self-contained HTML report of a study: fronts, trial table, recommendation and recipe.

plotly.js is inlined once, so the file opens offline in any browser.
"""

from __future__ import annotations

import html
import json
import os
import time
from typing import Any

import numpy as np
import optuna
import plotly.io as pio

from demix_core import figures
from demix_core.atomic import atomic_write_text
from demix_core.pareto import hypervolume_history
from demix_core.search.study import trials_frame


def study_figures(study: optuna.Study) -> list[tuple[str, Any]]:
    """(title, figure) pairs for a study's completed trials."""
    frame = trials_frame(study, states=(optuna.trial.TrialState.COMPLETE,))
    domains = list(study.metric_names or study.user_attrs.get("domains", []))
    comps = list(study.user_attrs.get("components", []))
    out: list[tuple[str, Any]] = []
    if frame.empty:
        return out
    dcols = [f"d:{d}" for d in domains]
    hover = [f"w:{c}" for c in comps] + dcols
    for i in range(len(dcols)):
        for j in range(i + 1, len(dcols)):
            out.append((f"Pareto front: {domains[i]} vs {domains[j]}",
                        figures.pareto_2d(frame, dcols[i], dcols[j], hover=hover)))
    if len(dcols) >= 3:
        out.append(("Pareto front in 3D", figures.pareto_3d(frame, dcols[0], dcols[1], dcols[2], hover=hover)))
    values = frame[dcols].to_numpy(dtype=float)
    history = hypervolume_history(values, values.min(0), points=60)
    out.append(("Hypervolume history", figures.hypervolume_plot(history)))
    out.append(("Weights and scores", figures.parallel_coordinates(frame, [f"w:{c}" for c in comps] + dcols, dcols[0])))
    if len(comps) >= 3:
        w = frame[[f"w:{c}" for c in comps]].to_numpy(dtype=float)
        groups = [[0], [1], list(range(2, len(comps)))]
        labels = [comps[0], comps[1], "+".join(comps[2:])]
        fig = figures.ternary(w, groups, labels, color=values.mean(1), color_label="mean score")
        out.append(("Mixture space", fig))
    return out


def write_report(study: optuna.Study, out: str | os.PathLike[str], *, recommendation: dict[str, Any] | None = None,
                 recipe: dict[str, Any] | None = None, title: str = "") -> str:
    """Write the report atomically; return its path."""
    figs = study_figures(study)
    frame = trials_frame(study)
    parts = [f"<h1>{html.escape(title or 'DeMix Studio: study ' + study.study_name)}</h1>",
             f"<p>Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Objectives (maximised): "
             f"{html.escape(', '.join(study.metric_names or []))}. Trials: {len(frame)}.</p>"]
    first = True
    for name, fig in figs:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(pio.to_html(fig, include_plotlyjs=True if first else False, full_html=False))
        first = False
    if recommendation:
        parts.append("<h2>Recommendation</h2><pre>" + html.escape(json.dumps(recommendation, indent=2,
                                                                              default=float)) + "</pre>")
    if recipe:
        parts.append("<h2>Recipe</h2><pre>" + html.escape(json.dumps(recipe, indent=2, default=float)) + "</pre>")
    parts.append("<h2>Trials</h2>" + frame.replace({np.nan: None}).to_html(index=False, float_format="%.4f"))
    doc = ("<!doctype html><html><head><meta charset='utf-8'><title>DeMix Studio report</title>"
           "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
           "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
           + "\n".join(parts) + "</body></html>")
    atomic_write_text(out, doc)
    return str(out)
