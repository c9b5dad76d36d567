"""What validation and the loop leave in a workspace, read by studies and validation alike.

``<workspace>/validation/<suite>.json`` holds the last validation report of a suite and its proxy pick
(written by :func:`demix_core.validation.report.record_validation`); new studies read the pick through
:func:`validated_proxy`. ``<workspace>/validation/loop.json`` holds the loop's plan (:class:`LoopPlan`): the
recommendation and baselines to train. Both sit below validation and search so that each can read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_FOLDER = "validation"  # <workspace>/validation/<suite>.json: the last report and its proxy pick


def record_path(ws: Any, suite: str) -> Path:
    """``<workspace>/validation/<suite>.json``: where validation records its report and proxy pick."""
    from demix_core.io.names import safe_filename

    return Path(ws.root) / RECORD_FOLDER / safe_filename(suite, ".json")


def read_validation(ws: Any, suite: str) -> dict[str, Any] | None:
    """The recorded validation of ``suite`` (what :func:`record_validation` wrote), or None."""
    path = record_path(ws, suite)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def validated_proxy(ws: Any, suite: str | None = None) -> tuple[str, str] | None:
    """(proxy kind, suite) that validation picked: the record of ``suite`` if there is one, else the newest
    record of any suite; None when the workspace has none."""
    folder = Path(ws.root) / RECORD_FOLDER
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        pick = data.get("pick") if isinstance(data, dict) else None
        if isinstance(pick, dict) and isinstance(pick.get("proxy"), str):
            records.append((data.get("suite") == suite, float(data.get("written_unix") or 0), pick["proxy"],
                            str(data.get("suite"))))
    if not records:
        return None
    _, _, kind, from_suite = max(records)
    return kind, from_suite


LOOP_FILE = "loop.json"


@dataclass
class LoopPlan:
    """The mixtures to train: role (``recommended`` or a baseline) -> mixture, and role -> reference name; each
    trained at seeds ``0 .. repeats - 1``, seed s as :func:`model_names` names it."""

    study: str
    weighting: Any
    proxy: str
    mixtures: dict[str, dict[str, float]]
    names: dict[str, str]
    repeats: int = 1
    against: str | None = None  # the role the recommendation was asked to beat (recommend --against)

    def to_json(self) -> dict[str, Any]:
        """Plain data (the loop file; ``repeats`` only when above 1 and ``against`` only when set, so a plan of one
        seed reads as before)."""
        return {"study": self.study, "weighting": self.weighting, "proxy": self.proxy, "mixtures": self.mixtures,
                "names": self.names, **({"repeats": self.repeats} if self.repeats > 1 else {}),
                **({"against": self.against} if self.against else {})}

    def model_names(self, role: str) -> list[str]:
        """The reference names of ``role``'s models, seed 0 first (seed s: ``<name>-s<s>``)."""
        from demix_core.io.names import seeded_name

        return [seeded_name(self.names[role], s) for s in range(self.repeats)]

    def all_names(self) -> set[str]:
        """Every model the plan trains (all roles, all seeds)."""
        return {n for role in self.names for n in self.model_names(role)}


def loop_path(ws: Any) -> Path:
    """``<workspace>/validation/loop.json``."""
    return Path(ws.root) / RECORD_FOLDER / LOOP_FILE


def read_plan(ws: Any) -> LoopPlan | None:
    """The recorded plan, or None."""
    try:
        data = json.loads(loop_path(ws).read_text(encoding="utf-8"))
        return LoopPlan(str(data["study"]), data.get("weighting"), str(data.get("proxy", "merge")),
                        {k: dict(v) for k, v in data["mixtures"].items()}, dict(data["names"]),
                        max(1, int(data.get("repeats", 1))),
                        str(data["against"]) if data.get("against") else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_plan(ws: Any, plan: LoopPlan) -> Path:
    """Write the plan atomically."""
    from demix_core.io.atomic import atomic_write_text

    return atomic_write_text(loop_path(ws), json.dumps(plan.to_json(), indent=1) + "\n")


