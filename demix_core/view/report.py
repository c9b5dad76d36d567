"""A self-contained HTML report of a study: fronts, trial table, recommendation and recipe.

plotly.js is inlined once, so the file opens offline in any browser.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import plotly.io as pio

from demix_core.errors import DemixError
from demix_core.io.atomic import atomic_write_text
from demix_core.io.names import safe_filename
from demix_core.runs.table_study import UNIT, table_settings
from demix_core.search import record
from demix_core.search.trials import trials_frame
from demix_core.view import figures

if TYPE_CHECKING:
    from demix_core.merge.resident import ResidentComponents
    from demix_core.workspace.manifest import Workspace


def study_figures(study: optuna.Study) -> list[tuple[str, Any]]:
    """(title, figure) pairs for a study's completed trials: :func:`demix_core.view.figures.study_figures` (the
    mixture map shaded outside the study's token budget, when it has one; a table study's axes in its own units)."""
    frame = trials_frame(study, states=(optuna.trial.TrialState.COMPLETE,))
    bounds = record.stored_bounds(study.user_attrs)
    unit = UNIT if table_settings(study) is not None else figures.SCORE_UNIT
    return [(f.title, f.figure) for f in figures.study_figures(frame, bounds=bounds, unit=unit)]


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
    shown = frame.drop(columns=[c for c in ("datetime_complete",) if c in frame]).rename(columns=figures.plain_name)
    # pandas 3 takes a callable float_format (a "%.4f" string raises TypeError); cells are HTML-escaped.
    parts.append("<h2>Trials</h2>" + shown.replace({np.nan: None}).to_html(index=False, float_format="{:.4f}".format,
                                                                            na_rep="", escape=True))
    doc = ("<!doctype html><html><head><meta charset='utf-8'><title>DeMix Studio report</title>"
           "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
           "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
           + "\n".join(parts) + "</body></html>")
    atomic_write_text(out, doc)
    return str(out)


def report_path(root: str | os.PathLike[str], study_name: str) -> Path:
    """Where a study's report goes: ``<workspace>/reports/<safe name>.html``, whatever the stored name holds."""
    return Path(root) / "reports" / safe_filename(study_name, ".html")


def write_study_report(ws: Workspace, study: optuna.Study, *, resident: ResidentComponents | None = None,
                       samples: int = 20_000) -> Path:
    """Write a study's full report under the workspace's ``reports/``: figures, trials, recommendation, recipe.

    Args:
        ws: The study's workspace (the report goes under ``ws.root / "reports"``).
        study: The study.
        resident: The workspace's resident components, for the recommendation's recipe (component
            paths and tokenizer hashes); without it the recipe lists the mixture, method and paths.
        samples: Mixtures the predictor ranks for the recommendation.

    Returns:
        The report's path.
    """
    from demix_core.search.recommend import recommend_for_study

    method = record.method(study.user_attrs)
    try:
        rec = recommend_for_study(ws, study, samples=samples)
    except DemixError as exc:
        return Path(write_report(study, report_path(ws.root, study.study_name),
                                 recommendation={"none": f"no recommendation yet: {exc}"}))
    if resident is not None:
        from demix_core.export.merged import recipe as make_recipe

        recipe = make_recipe(resident, rec.mixture, method=method, hashes=False)
    else:
        recipe = {"format": "demix-recipe/1", "mixture": rec.mixture.as_dict(), "method": method,
                  "components": [{"name": c.name, "path": c.path, "weight": rec.mixture.as_dict()[c.name]}
                                 for c in ws.components], "base": ws.base}
    recommendation = {k: v for k, v in rec.to_json().items() if k != "neighbours"}
    return Path(write_report(study, report_path(ws.root, study.study_name), recommendation=recommendation,
                             recipe=recipe))
