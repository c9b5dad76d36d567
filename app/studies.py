"""What the Study page needs: the samplers to pick, a new study, the report, and the trial table as it is shown.

The study itself is Optuna's (``demix_core.search.study``); the trial tables come cached from :mod:`app.state`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app.figures import weight_columns
from app.nav import page
from app.state import Workspace, engine
from demix_core.io.names import check_study_name, safe_filename
from demix_core.mixing.pairs import format_pairs
from demix_core.search.study import create_study, load_study
from demix_core.view.figures import plain_name

DEFAULT_SAMPLER = "front"  # a new study's sampler unless one is picked (see app.state.sampler_names)
REPORT_KEY = "_report_paths"  # study -> the report this session exported
PICKED_KEY = "_picked_point"  # the (study, trial number) of the last point a click opened in the Mixer


def new_study(ws: Workspace, name: str, *, sampler: str) -> str:
    """Create study ``name`` in the workspace's storage (never over an existing one); return its name.

    Raises:
        DemixError: A bad name or sampler, or the study exists.
    """
    create_study(ws, check_study_name(name), sampler=sampler, exist_ok=False)
    return name


def write_report(ws: Workspace, study: str) -> Path:
    """Write the study's report (fronts, trials, recommendation, recipe) under the workspace's ``reports/`` (a table
    workspace's without checkpoints: its recipe lists the mixture)."""
    from demix_core.view.report import write_study_report

    resident = None if ws.is_table else engine(str(ws.root), "quick").resident
    return write_study_report(ws, load_study(ws, study), resident=resident)


def remember_report(study: str, path: Path) -> None:
    """Keep ``path`` as this session's last report of ``study`` (for its download button)."""
    st.session_state.setdefault(REPORT_KEY, {})[study] = str(path)


def last_report(study: str) -> tuple[bytes, str] | None:
    """This session's last report of ``study`` while its file exists: (its bytes, the file name it downloads as)."""
    path = st.session_state.get(REPORT_KEY, {}).get(study)
    if path and Path(path).is_file():
        return Path(path).read_bytes(), safe_filename(study, ".html")
    return None


def counts_line(frame: pd.DataFrame) -> str:
    """The trials by state, in words (``complete 5, running 1``; ``none``)."""
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    return ", ".join(f"{k.lower()} {v:,}" for k, v in counts.items()) or "none"


def shown_trials(done: pd.DataFrame) -> pd.DataFrame:
    """The trial table as shown: plain column names, missing values empty."""
    table = done.drop(columns=["datetime_complete"]).rename(columns=plain_name)
    return table.replace({np.nan: None})


def open_in_mixer(event: object, done: pd.DataFrame, study: str) -> None:
    """A clicked point of a front (the chart's selection ``event``) opens its mixture in the Mixer, once per click."""
    points = event.get("selection", {}).get("points", []) if isinstance(event, dict) else []
    picked = points[0].get("customdata") if points else None
    if isinstance(picked, list):
        picked = picked[0] if picked else None
    if picked is None:
        st.session_state.pop(PICKED_KEY, None)
        return
    number = int(picked)
    if st.session_state.get(PICKED_KEY) == (study, number):
        return  # this selection was handled already (the user came back from the Mixer)
    st.session_state[PICKED_KEY] = (study, number)
    rows = done[done["number"] == number]
    if rows.empty:
        return
    row = rows.iloc[0]
    mixture = format_pairs({c[2:]: row[c] for c in weight_columns(done)}, digits=4)
    st.switch_page(page("mixer"), query_params={"study": study, "mixture": mixture, "trial": str(number)})
