"""Where a mixture measured outside a worker (the Mixer) goes in a study: added as a finished trial, or queued.

A measurement joins a study as a COMPLETE trial only when it is what the study's own workers would have recorded:
scores in the study's suite (not its own lm-eval tasks), merged with the study's method, by the study's proxy
kind (the Mixer measures the ``merge`` kind: the merged weights). Otherwise the mixture is queued and a worker
scores it; the reason says which differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from demix_core.proxy import DEFAULT_KIND, get_kind
from demix_core.search import record


@dataclass(frozen=True)
class Placement:
    """Whether a measured mixture is added to a study as a COMPLETE trial (``add``), else why it is queued."""

    add: bool
    reason: str = ""


def scores_in_suite(attrs: Mapping[str, Any], suite: str) -> bool:
    """Whether a study (its user attributes) scores in ``suite``: it has no lm-eval tasks of its own and that suite."""
    return not record.tasks(attrs) and record.suite(attrs) == suite


def place_measured(attrs: Mapping[str, Any], *, suite: str, method: str, proxy: str = DEFAULT_KIND) -> Placement:
    """Add or queue a mixture measured by the ``proxy`` kind (the merged weights), in ``suite``, merged with
    ``method``.

    Args:
        attrs: The study's user attributes (``suite``, ``tasks``, ``method``, ``proxy``: the study's settings, read
            as :mod:`demix_core.search.record` reads them; a study without ``method`` merges linearly, one without
            ``proxy`` scores ``merge``).
        suite: The suite the measurement scored in.
        method: The merge method of the measurement.
        proxy: The proxy kind that measured it (:mod:`demix_core.proxy`).

    Returns:
        ``Placement(add=True)`` when the measurement is the study's own kind of trial; else ``add=False`` and the
        first setting that differs (suite or tasks, then method, then proxy kind), in words.
    """
    if not scores_in_suite(attrs, suite):
        return Placement(False, "the study scores with its own tasks")
    study_method = record.method(attrs)
    if method != study_method:
        return Placement(False, f"the study merges with {study_method}, not {method}")
    study_proxy = str(attrs.get("proxy") or record.DEFAULT_PROXY)
    if study_proxy != proxy:
        return Placement(False, f"the study scores the {study_proxy} proxy, not the {get_kind(proxy).label}")
    return Placement(True)
