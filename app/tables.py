"""A table workspace in the dashboard: past runs imported with ``demix import-runs``, no checkpoints.

What the Workspace and Study pages show of it (its domains, studies and references; a study's imported runs and its
per-metric table, directions shown), and the one sentence a page says where it needs checkpoints
(:func:`no_checkpoints`). The predictor fitted on a table study is :mod:`app.table_fits`; validation against the
table's references is :mod:`app.table_validating`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from app.figures import plain_name, weight_columns
from app.state import Workspace, finished_trials, md, study_attrs, study_names
from demix_core.runs.noise import study_noise
from demix_core.runs.table_study import TABLE, UNIT, TableSettings, imported, score_key
from demix_core.search.study import load_study
from demix_core.workspace.manifest import load_workspace

__all__ = ["IMPORT_HINT", "UNIT", "metric_frame", "no_checkpoints", "orientation_note", "references_frame",
           "run_keys", "runs_frame", "settings", "studies_frame", "summary", "workspace_note"]

IMPORT_HINT = ("Add runs with `demix import-runs --workspace W --study S --mixtures M.csv --scores S.csv`, and runs "
               "at a larger scale with `--references`.")


def no_checkpoints(what: str) -> str:
    """The one sentence a page of a table workspace says instead of what needs checkpoints (``what``: e.g.
    ``no worker runs here``)."""
    return f"This workspace is a table of past runs and has no checkpoints, so {what}."


def summary(ws: Workspace) -> str:
    """One line about a table workspace: its name, counts and storage (markdown-safe)."""
    return (f"{md(ws.name)} · table of past runs · {len(ws.components)} domains · {len(ws.references)} reference runs"
            f" · storage {md(ws.storage)}")


def workspace_note() -> str:
    """What a table workspace is, and what it cannot do, in one sentence."""
    return no_checkpoints("nothing is merged or scored here: each study's imported runs are its trials, and the "
                          "predictor fitted on them stands in for a proxy on the Mixer, Recommend and Validate pages")


def orientation_note() -> str:
    """How a table study's objectives are plotted."""
    return ("Objectives are oriented so that higher is better: a lower-is-better metric is plotted negated (the "
            "per-metric table and the runs show the scores as imported).")


def settings(root: str, storage: str, study: str) -> TableSettings | None:
    """A study's import settings (metrics, objectives, directions); None when it holds no imported runs."""
    data = study_attrs(root, storage, study).get(TABLE)
    return TableSettings.from_attr(data) if isinstance(data, dict) else None


def _directions(s: TableSettings, metrics: tuple[str, ...]) -> str:
    return ", ".join(f"{m} ({'higher' if s.objectives.higher[m] else 'lower'})" for m in metrics)


def studies_frame(ws: Workspace) -> pd.DataFrame:
    """One row per study: its imported runs and its objectives (each metric's direction: which is better)."""
    root, storage = str(ws.root), ws.storage_url()
    rows = []
    for name in study_names(ws):
        s = settings(root, storage, name)
        objectives = "; ".join(f"{o} = {_directions(s, ms)}" if ms != (o,) else _directions(s, ms)
                               for o, ms in s.objectives.groups.items()) if s else "(not a study of imported runs)"
        rows.append({"study": name, "runs": finished_trials(root, storage, name), "metrics": len(s.metrics) if s else 0,
                     "objectives (which is better)": objectives})
    return pd.DataFrame(rows, columns=["study", "runs", "metrics", "objectives (which is better)"])


def references_frame(ws: Workspace) -> pd.DataFrame:
    """One row per reference run: its weights and measured scores, as imported."""
    rows = [{"reference": r.name, **{f"{n} weight": r.mixture.get(n, 0.0) for n in ws.component_names},
             **dict(r.scores or {})} for r in ws.references]
    return pd.DataFrame(rows)


@st.cache_data(ttl=60, max_entries=32, show_spinner=False)
def run_keys(root: str, storage: str, study: str, finished: int) -> dict[int, str]:
    """Trial number -> the run's key in the table, per (study, finished trials)."""
    opened = load_study(load_workspace(root), study, storage=storage)
    return {t.number: run for run, t in imported(opened).items()}


def runs_frame(root: str, storage: str, study: str, done: pd.DataFrame) -> pd.DataFrame:
    """The imported runs as the table wrote them: key, trial number, weights and every metric's raw score."""
    keys = run_keys(root, storage, study, len(done))
    frame = pd.DataFrame({"run": [keys.get(int(n), "") for n in done["number"]], "trial": done["number"].to_numpy()})
    for c in weight_columns(done):
        frame[plain_name(c)] = done[c].to_numpy()
    s = settings(root, storage, study)
    for m in s.metrics if s else ():
        column = f"b:{score_key(m)}"
        if column in done:
            frame[m] = done[column].to_numpy()
    return frame.replace({np.nan: None})


@st.cache_data(ttl=60, max_entries=32, show_spinner=False)
def _floor(root: str, storage: str, study: str, finished: int) -> tuple[dict[str, float], int]:
    floor = study_noise(load_study(load_workspace(root), study, storage=storage))
    return dict(floor.spread), floor.mixtures


def metric_frame(root: str, storage: str, study: str, done: pd.DataFrame) -> pd.DataFrame:
    """One row per metric: which is better, the objective it feeds, and over the runs its best run, best, mean and
    worst score and noise floor (the pooled spread of repeated mixtures; empty without repeats)."""
    s = settings(root, storage, study)
    if s is None:
        return pd.DataFrame()
    spread, _ = _floor(root, storage, study, finished_trials(root, storage, study))
    keys = run_keys(root, storage, study, len(done))
    feeds = {m: [o for o, ms in s.objectives.groups.items() if m in ms] for m in s.metrics}
    rows = []
    for m in s.metrics:
        column = f"b:{score_key(m)}"
        values = done[column].astype(float) if column in done else pd.Series(dtype=float)
        higher = s.objectives.higher[m]
        seen = values.dropna()
        best = (seen.idxmax() if higher else seen.idxmin()) if len(seen) else None
        rows.append({"metric": m, "direction": "higher is better" if higher else "lower is better",
                     "objective": ", ".join(feeds[m]) or "-", "runs": len(seen),
                     "best run": keys.get(int(done.loc[best, "number"]), "") if best is not None else "",
                     "best": _value(seen.max() if higher else seen.min()), "mean": _value(seen.mean()),
                     "worst": _value(seen.min() if higher else seen.max()), "noise floor ±": spread.get(m)})
    return pd.DataFrame(rows)


def _value(v: float) -> float | None:
    return None if v is None or math.isnan(float(v)) else float(v)

