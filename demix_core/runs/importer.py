"""``demix import-runs``: a table of past runs becomes a study of a table workspace, or the workspace's references.

All or nothing: the tables, the workspace, the study and every run are checked before anything is written, and a
failed write removes what this import created. Importing the same table again adds nothing (runs are matched by
their key; a key already imported with other weights or scores is an error).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from demix_core.errors import ConfigError, DataError, MixtureError, StudyError, UnknownStudyError
from demix_core.mixing.mixture import check_names
from demix_core.runs.noise import NoiseFloor, study_noise
from demix_core.runs.objectives import Objectives, choose_objectives, parse_objectives, spec_metrics
from demix_core.runs.table_study import (
    TableSettings,
    create_table_study,
    imported,
    raw_scores,
    run_trial,
    table_settings,
)
from demix_core.runs.tables import Run, RunTable, read_runs
from demix_core.search import record
from demix_core.search.storage import open_storage, storage_url
from demix_core.search.study import load_study
from demix_core.workspace.manifest import (
    KIND_TABLE,
    MANIFEST,
    ComponentEntry,
    ReferenceEntry,
    Workspace,
    load_workspace,
)

# A new table workspace keeps its studies in an Optuna journal file: adding a finished trial there takes ~2 ms,
# against ~50 ms in SQLite (a transaction per parameter), so 512 runs import in about a second. It opens like any
# storage URL (``demix``, the dashboard, ``optuna-dashboard studies.log``); ``--storage`` picks another.
TABLE_STORAGE = "journal:studies.log"


@dataclass
class ImportReport:
    """What one import did: where, what it read, what it added, what it left out and why."""

    workspace: Path
    study: str | None
    table: RunTable
    created: list[str] = field(default_factory=list)  # "workspace", "study"
    objectives: Objectives | None = None
    imported: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already imported: nothing added for them
    skipped: list[dict[str, Any]] = field(default_factory=list)
    noise: NoiseFloor | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        t = self.table
        return {"workspace": str(self.workspace), "study": self.study, "references": self.study is None,
                "created": self.created, "layout": t.layout, "key": t.key, "mixtures": str(t.mixtures),
                "scores": str(t.scores), "domains": t.domains, "metrics": t.metrics,
                "objectives": self.objectives.to_json() if self.objectives else None,
                "imported": self.imported, "runs": len(self.imported), "already_imported": self.present,
                "skipped": self.skipped, "sum_tolerance": t.tolerance,
                "renormalised": [{"run": r.key, "row": r.row, "sum": r.total} for r in t.renormalised()],
                "noise": self.noise.to_json() if self.noise else None}

    def lines(self) -> list[str]:
        """What a person reads after the import."""
        t = self.table
        into = f"study {self.study}" if self.study else "the references"
        made = f" (created: {', '.join(self.created)})" if self.created else ""
        out = [f"imported {len(self.imported)} runs ({t.layout} layout, key {t.key}) into {into} of table workspace "
               f"{self.workspace}{made}", f"domains ({len(t.domains)}): {', '.join(t.domains)}"]
        if self.objectives is not None:
            out.append("objectives (maximised; a lower-is-better metric is stored negated): " + "; ".join(
                _objective_text(o, ms) for o, ms in self.objectives.to_json().items()))
        out.append(f"metrics stored ({len(t.metrics)}): {', '.join(t.metrics)}")
        renorm = t.renormalised()
        if renorm:
            out.append(f"renormalised {len(renorm)} runs whose weights summed to 1 within {t.tolerance:.2g} (e.g. "
                       f"run {renorm[0].key}: {renorm[0].total:.9g})")
        if self.present:
            out.append(f"already imported, nothing added: {len(self.present)} runs")
        for s in self.skipped:
            out.append(f"skipped run {s['run']} ({Path(s['file']).name} row {s['row']}): {s['why']}")
        if self.noise is not None and self.noise.spread:
            out.append(f"noise floor ({self.noise.mixtures} mixtures run more than once, {self.noise.runs} runs): "
                       + ", ".join(f"{k} ±{v:.4g}" for k, v in self.noise.spread.items()))
        return out


def _objective_text(name: str, metrics: dict[str, str]) -> str:
    """``loss (lower is better)``, or ``family = mean of a (lower), b (higher)``."""
    if list(metrics) == [name]:
        return f"{name} ({metrics[name]} is better)"
    return f"{name} = mean of " + ", ".join(f"{m} ({d})" for m, d in metrics.items())


def import_runs(workspace: str | os.PathLike[str], mixtures: str | os.PathLike[str],
                scores: str | os.PathLike[str] | None = None, *, study: str | None = None, key: str | None = None,
                objectives: str | None = None, higher_is_better: Iterable[str] = (), references: bool = False,
                storage: str | None = None) -> ImportReport:
    """Import a table of runs into study ``study`` of a table workspace (made when the folder has none), or, with
    ``references``, as the workspace's references.

    Args:
        workspace: The table workspace's folder.
        mixtures: The CSV of mixtures (see :func:`~demix_core.runs.tables.read_runs` for the layouts).
        scores: The CSV of scores; None when ``mixtures`` holds them too (named by ``objectives``).
        study: The study to add the runs to (made when it does not exist).
        key: The key column joining the files (default: ``run``, ``run_id`` or ``index``).
        objectives: ``a,b,family=m1+m2`` (default: every metric, when there are at most 8).
        higher_is_better: Metrics for which higher is better (the others: lower).
        references: Add the runs as the workspace's references instead of a study's trials.
        storage: Storage URL (default: the workspace's).

    Raises:
        DataError: A bad table (the message names the file, the row and the column), or domains or metrics that differ
            from the workspace's or the study's.
        ConfigError: An unknown objective or metric, or ``study`` and ``references`` both given or both left out.
        WorkspaceError: The folder holds a workspace of checkpoints.
        StudyError: The study holds trials of another kind.
    """
    if references == (study is not None):
        raise ConfigError("give --study S to import runs into a study, or --references to add them as the "
                          "workspace's references (not both)")
    if references and objectives:
        raise ConfigError("--objectives belongs to a study; leave it out with --references")
    higher = list(higher_is_better)
    table = read_runs(mixtures, scores, key=key,
                      metric_columns=(spec_metrics(objectives) + higher) if scores is None else ())
    ws, new = _workspace(workspace, table)
    if study is None:
        return _import_references(ws, new, table)
    return _import_study(ws, new, table, study, objectives, higher, storage)


def _workspace(folder: str | os.PathLike[str], table: RunTable) -> tuple[Workspace, bool]:
    """The table workspace at ``folder`` (its domains must be the table's), or a new one (not saved yet)."""
    root = Path(folder).resolve()
    if (root / MANIFEST).exists():
        ws = load_workspace(root)
        if not ws.is_table:
            raise ConfigError(f"{folder} is a workspace of checkpoints; import runs into a new folder, which becomes "
                              "a table workspace")
        extra = [d for d in table.domains if d not in ws.component_names]
        lacking = [d for d in ws.component_names if d not in table.domains]
        if extra or lacking:
            what = f"column {extra[0]!r} is not a domain of" if extra else f"has no column for domain {lacking[0]!r} of"
            raise DataError(f"{table.mixtures} header: {what} workspace {folder} (its domains: "
                            f"{', '.join(ws.component_names)}); give a table over the same domains or import it into "
                            "a new workspace")
        return ws, False
    for d in table.domains:
        try:
            check_names([d])
        except MixtureError:
            raise DataError(f"{table.mixtures} header, column {d!r}: a domain name cannot hold spaces, commas or '='; "
                            "rename the column") from None
    comps = [ComponentEntry(name=d, path="", domain=d) for d in table.domains]
    return Workspace(root=root, name=root.name, components=comps, suite=KIND_TABLE, storage=TABLE_STORAGE,
                     kind=KIND_TABLE), True


def _settings(table: RunTable, existing: optuna.Study | None, objectives: str | None,
              higher: Sequence[str]) -> TableSettings:
    """A new study's settings from the table, or the existing study's, checked against the table."""
    source = str(table.scores)
    if existing is None:
        return TableSettings(table.key, tuple(table.metrics),
                             choose_objectives(table.metrics, objectives, higher, source=source))
    settings = table_settings(existing)
    if settings is None:
        raise StudyError(f"study {existing.study_name!r} holds trials of merged proxies, not imported runs; import "
                         "the table into another study")
    extra = [m for m in table.metrics if m not in settings.metrics]
    lacking = [m for m in settings.metrics if m not in table.metrics]
    if extra or lacking:
        what = (f"metric {extra[0]!r} is not among the metrics of" if extra
                else f"has no column for metric {lacking[0]!r} of")
        raise DataError(f"{source} header: {what} study {existing.study_name!r}; import this table into another study")
    if objectives is not None and parse_objectives(objectives) != settings.objectives.groups:
        raise ConfigError(f"study {existing.study_name!r} optimises {', '.join(settings.objectives.groups)}; leave "
                          "--objectives out, or import into another study")
    stored_up = sorted(m for m, up in settings.objectives.higher.items() if up)
    if higher and sorted(set(higher)) != stored_up:
        up = ", ".join(stored_up) or "none"
        raise ConfigError(f"study {existing.study_name!r} takes higher as better for: {up}; "
                          "leave --higher-is-better out, or import into another study")
    return settings


def _same(run: Run, mixture: dict[str, float], scores: dict[str, float]) -> bool:
    close = all(math.isclose(run.weights.get(d, 0.0), float(w), abs_tol=1e-9) for d, w in mixture.items())
    return close and run.scores == scores


def _trials(ws: Workspace, table: RunTable, settings: TableSettings, existing: optuna.Study | None,
            report: ImportReport) -> list[optuna.trial.FrozenTrial]:
    """The trials to add (each run not imported yet), filling the report's present and skipped runs."""
    present = imported(existing) if existing is not None else {}
    out = []
    for run in table.runs:
        if run.key in present:
            t = present[run.key]
            if not _same(run, record.mixture(t) or {}, raw_scores(t)):
                raise DataError(f"{table.mixtures} row {run.row} (run {run.key!r}): study {report.study!r} already "
                                f"holds run {run.key!r} with other weights or scores (from {record.run_file(t)});"
                                " "
                                "import this table into another study, or give --key a column that tells them apart")
            report.present.append(run.key)
            continue
        trial = run_trial(settings, ws.component_names, run, table.mixtures.name)
        if isinstance(trial, str):
            report.skipped.append({"run": run.key, "file": str(table.mixtures), "row": run.row,
                                   "why": f"no score for objective metric {trial!r}"})
            continue
        out.append(trial)
        report.imported.append(run.key)
    return out


def _import_study(ws: Workspace, new: bool, table: RunTable, name: str, objectives: str | None,
                  higher: Sequence[str], storage: str | None) -> ImportReport:
    try:
        existing = load_study(ws, name, storage=storage)
    except UnknownStudyError:
        existing = None
    settings = _settings(table, existing, objectives, higher)
    report = ImportReport(ws.root, name, table, objectives=settings.objectives, skipped=list(table.skipped))
    trials = _trials(ws, table, settings, existing, report)
    if not trials and existing is None:
        raise DataError(f"no run of {table.mixtures} can be imported ({len(report.skipped)} skipped, e.g. "
                        f"{report.skipped[0]['why'] if report.skipped else 'none'}); nothing was written")
    with _undo(ws, new, name, storage) as created:
        study = existing or create_table_study(ws, name, settings, storage=storage)
        if existing is None:
            created.append("study")
        study.add_trials(trials)
    report.created = created
    report.noise = study_noise(study)
    return report


def _import_references(ws: Workspace, new: bool, table: RunTable) -> ImportReport:
    report = ImportReport(ws.root, None, table, skipped=list(table.skipped))
    known = {r.name: r for r in ws.references}
    added = []
    for run in table.runs:
        ref = known.get(run.key)
        if ref is not None:
            if not _same(run, ref.mixture, dict(ref.scores or {})):
                raise DataError(f"{table.mixtures} row {run.row} (run {run.key!r}): reference {run.key!r} already "
                                "exists with other weights or scores; import this table into another workspace")
            report.present.append(run.key)
            continue
        added.append(ReferenceEntry(name=run.key, path=str(table.scores), mixture=dict(run.weights),
                                    scores=dict(run.scores)))
        report.imported.append(run.key)
    if added or new:
        with _undo(ws, new, None, None) as created:
            dataclasses.replace(ws, references=[*ws.references, *added]).save()
        report.created = created
    return report


@contextlib.contextmanager
def _undo(ws: Workspace, new: bool, study: str | None, storage: str | None) -> Iterator[list[str]]:
    """Write a new workspace's manifest first; on failure remove what this import created (the folder or the
    manifest, and a study it made). Yields the list of what was created, for the caller to extend."""
    created: list[str] = []
    made_folder = new and not ws.root.exists()
    try:
        if new:
            ws.root.mkdir(parents=True, exist_ok=True)
            ws.save()
            created.append("workspace")
        yield created
    except BaseException:
        if "study" in created and study:
            optuna.delete_study(study_name=study, storage=open_storage(storage_url(ws, storage)))
        if made_folder:
            shutil.rmtree(ws.root, ignore_errors=True)
        elif new:
            (ws.root / MANIFEST).unlink(missing_ok=True)
        raise
