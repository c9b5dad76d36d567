"""What to do next on a workspace, in one line for the Workspace page: read from what the workspace holds (studies,
references, validation records) and from its tour."""

from __future__ import annotations

from app.state import Workspace, study_names
from app.tour import status as tour_status
from demix_core.workspace.records import read_plan, read_validation

MIN_REFERENCES = 3  # what validation needs


def next_step(ws: Workspace) -> str:
    """The next useful step on a workspace of checkpoints, in words (the pages named as in the sidebar)."""
    tour = tour_status(ws.root)
    if tour.running:
        return ("The tour works in the background (above): each page fills itself as its part lands. Meanwhile, the "
                "Mixer merges a proxy for any mixture you set with its sliders.")
    refs = [r for r in ws.references if r.kind == "reference"]
    studies = study_names(ws)
    suite = ws.suite or "quick"
    if not studies:
        return ("Next: on the Mixer, move the sliders to see a merged proxy's scores; on the Study page, create a "
                "study and start a worker to search mixtures"
                + ("." if len(refs) >= MIN_REFERENCES else
                   "; on the Validate page, train reference models to check that the proxies can be trusted."))
    if len(refs) < MIN_REFERENCES:
        return ("Next: on the Validate page, train reference models (at least 3) to check the proxies; on the "
                "Recommend page, the predictor's pick from your study.")
    record = read_validation(ws, suite)
    if record is None:
        return "Next: on the Validate page, run validation to see which proxy kind to trust."
    if read_plan(ws) is None:
        return ("Next: on the Recommend page (or the Validate page), train the recommendation and its baselines, then "
                "run validation again for the verdict.")
    if not (record.get("loop") or {}).get("entries"):
        return "Next: on the Validate page, run validation again: it ranks the trained recommendation."
    return "The Validate page holds the verdict: how the trained recommendation ranks, and which proxy to trust."
