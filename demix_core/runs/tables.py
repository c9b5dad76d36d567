"""Reading tables of past runs: a CSV of mixtures and one of scores (or one holding both), joined on a key column.

The published layouts load as they are:

- RegMix: mixtures ``index,<domain>,...``, scores ``index,metric/<name>,...``; joined on ``index``. The
  ``metric/`` prefix is dropped from metric names (``metric/the_pile_arxiv_val_loss`` is ``the_pile_arxiv_val_loss``).
- Olmix: an unnamed first column (a saved pandas index), then ``run,name,index``, then one column per domain
  (ratios) or per metric (metrics); joined on ``run`` (or ``run_id``).
- Plain: any two CSVs sharing a key column (``key``), or one CSV whose metric columns are named.

Columns named ``run``, ``run_id``, ``index`` or ``name``, and unnamed ones, are never domains or metrics. Rows
count from 1 below the header. Every problem is one :class:`~demix_core.errors.DataError` naming the file, the
row and the column; nothing is read half.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demix_core.errors import DataError, near_matches

META = ("run", "run_id", "index", "name")  # metadata columns: never a domain or a metric
KEYS = ("run", "run_id", "index")  # key columns tried, in this order, when none is given
SCORE_PREFIX = "metric/"  # RegMix's prefix of metric columns, dropped from metric names
SUM_TOLERANCE = 1e-3  # weights summing to 1 within this (or within their rounding) are renormalised
MAX_ROUNDING = 0.01  # the rounding allowance at most (Olmix's own check): 17 domains at 3 decimals give 0.0085
_MISSING = ("", "nan", "na", "n/a", "null", "none")  # score cells that mean "not measured"
_UNNAMED = re.compile(r"(Unnamed: \d+)?")
_SCIENTIFIC_DECIMALS = 12


@dataclass
class Run:
    """One run: its key, its row in the mixtures file, its weights (renormalised) and its raw scores.

    Attributes:
        key: The run's key (the key column's text).
        row: Its row in the mixtures file (1 = the first row below the header).
        weights: Domain -> weight, summing to 1.
        scores: Metric -> raw score as written; metrics whose cell is empty are left out.
        total: The weights' sum as written (1 unless they were renormalised).
    """

    key: str
    row: int
    weights: dict[str, float]
    scores: dict[str, float]
    total: float = 1.0


@dataclass
class RunTable:
    """The joined runs of one import, with what was left out and why."""

    mixtures: Path
    scores: Path
    layout: str  # regmix, olmix or plain
    key: str
    domains: list[str]
    metrics: list[str]
    runs: list[Run]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    tolerance: float = SUM_TOLERANCE

    def renormalised(self) -> list[Run]:
        """The runs whose weights did not sum to exactly 1 as written (within :attr:`tolerance`)."""
        return [r for r in self.runs if abs(r.total - 1.0) > 1e-12]


@dataclass
class _Csv:
    path: Path
    header: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> int:
        return self.header.index(name)


def _read_csv(path: str | os.PathLike[str]) -> _Csv:
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            lines = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise DataError(f"{p}: no such file; give the path of the CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{p} cannot be read as CSV ({exc}); save it as UTF-8 comma-separated text") from None
    if len(lines) < 2:
        raise DataError(f"{p} has no rows below its header; give a CSV with one row per run")
    header = [c.strip() for c in lines[0]]
    for i, row in enumerate(lines[1:], 1):
        if len(row) != len(header):
            raise DataError(f"{p} row {i} has {len(row)} cells but the header has {len(header)}; give every row "
                            "one cell per column")
    return _Csv(p, header, [[c.strip() for c in row] for row in lines[1:]])


def _unnamed(column: str) -> bool:
    return bool(_UNNAMED.fullmatch(column))


def _find_key(files: Sequence[_Csv], key: str | None) -> str:
    if key is not None:
        for f in files:
            if key not in f.header:
                named = [c for c in f.header if not _unnamed(c)]
                raise DataError(f"{f.path} has no key column {key!r} ({near_matches(key, named)}); give --key with "
                                "the column that names each run")
        return key
    for k in KEYS:
        if all(k in f.header for f in files):
            return k
    shared = [c for c in files[0].header if not _unnamed(c) and all(c in f.header for f in files[1:])]
    where = " and ".join(str(f.path) for f in files)
    listed = f" (shared columns: {', '.join(shared[:10])})" if shared and len(files) > 1 else ""
    raise DataError(f"{where}: no key column (run, run_id or index){listed}; give --key with the column that "
                    "names each run")


def _metric_name(column: str, header: Sequence[str]) -> str:
    if column.startswith(SCORE_PREFIX) and column[len(SCORE_PREFIX):] and column[len(SCORE_PREFIX):] not in header:
        return column[len(SCORE_PREFIX):]
    return column


def _keys(f: _Csv, key: str) -> dict[str, int]:
    """Run key -> row (1-based), each key once."""
    col, out = f.column(key), dict[str, int]()
    for i, row in enumerate(f.rows, 1):
        k = row[col]
        if not k:
            raise DataError(f"{f.path} row {i}, column {key!r}: the key is empty; give every run a key")
        if k in out:
            raise DataError(f"{f.path} rows {out[k]} and {i} both name run {k!r} in column {key!r}; give each run "
                            "one row (or a --key column that is unique)")
        out[k] = i
    return out


def _decimals(text: str) -> int:
    if "e" in text.lower():
        return _SCIENTIFIC_DECIMALS
    return len(text.partition(".")[2])


def _weights(f: _Csv, i: int, key: str, columns: dict[str, int]) -> tuple[dict[str, float], int]:
    """A row's weights (as written) and the most decimals any of them has."""
    out, decimals = {}, 0
    for name, col in columns.items():
        text = f.rows[i - 1][col]
        where = f"{f.path} row {i} (run {key!r}), column {name!r}"
        if not text:
            raise DataError(f"{where}: the weight is empty; write a number >= 0 (0 for a domain the run left out)")
        try:
            w = float(text)
        except ValueError:
            raise DataError(f"{where}: weight {text!r} is not a number; write a number >= 0") from None
        if not math.isfinite(w):
            raise DataError(f"{where}: weight {text!r} is not a finite number; write a number >= 0")
        if w < 0:
            raise DataError(f"{where}: weight {text!r} is negative; weights are shares >= 0")
        out[name] = w
        decimals = max(decimals, _decimals(text))
    return out, decimals


def _scores(f: _Csv, i: int, key: str, columns: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, col in columns.items():
        text = f.rows[i - 1][col]
        if text.lower() in _MISSING:
            continue
        where = f"{f.path} row {i} (run {key!r}), column {f.header[col]!r}"
        try:
            v = float(text)
        except ValueError:
            raise DataError(f"{where}: score {text!r} is not a number; fix the cell or leave it empty") from None
        if not math.isfinite(v):
            raise DataError(f"{where}: score {text!r} is not a finite number; fix the cell or leave it empty")
        out[name] = v
    return out


def _columns(f: _Csv, key: str, chosen: Sequence[str] | None) -> dict[str, int]:
    """Data column name -> index: every non-metadata column, or the ``chosen`` ones (by column or metric name)."""
    data = {c: i for i, c in enumerate(f.header) if c != key and c not in META and not _unnamed(c)}
    if chosen is None:
        return data
    out = {}
    by_name = {_metric_name(c, f.header): c for c in data}
    for name in chosen:
        column = name if name in data else by_name.get(name)
        if column is None:
            raise DataError(f"{f.path} has no column {name!r} ({near_matches(name, list(by_name))}); name its "
                            "score columns with --objectives")
        out[column] = data[column]
    return out


def _layout(mix: _Csv, key: str, metric_columns: Sequence[str]) -> str:
    if mix.header and _unnamed(mix.header[0]) and key in ("run", "run_id") and "name" in mix.header:
        return "olmix"
    if key == "index" and any(c.startswith(SCORE_PREFIX) for c in metric_columns):
        return "regmix"
    return "plain"


def read_runs(mixtures: str | os.PathLike[str], scores: str | os.PathLike[str] | None = None, *,
              key: str | None = None, metric_columns: Sequence[str] = ()) -> RunTable:
    """Read, check and join a table of runs.

    Args:
        mixtures: The CSV of mixtures: a key column and one weight column per domain.
        scores: The CSV of scores: the same key column and one column per metric. None: ``mixtures`` holds both,
            and ``metric_columns`` names the score columns.
        key: The key column (default: ``run``, ``run_id`` or ``index``, the first that every file has).
        metric_columns: With ``scores`` None, the score columns (by column name or metric name).

    Returns:
        The joined runs. A mixture row without a scores row, or without any score, is skipped (and listed).

    Raises:
        DataError: A missing key column, a key given twice, a scores row without a mixture row, an empty, non-numeric,
            NaN or negative weight, weights whose sum is not 1 beyond :data:`SUM_TOLERANCE` (or their rounding:
            half a unit of the last decimal written per domain, at most :data:`MAX_ROUNDING`), or a non-numeric
            score: the message names the file, the row and the column.
    """
    mix = _read_csv(mixtures)
    sco = _read_csv(scores) if scores is not None else mix
    if scores is None and not metric_columns:
        raise DataError(f"{mix.path}: without a scores file, name the score columns of {mix.path.name} with "
                        "--objectives")
    key = _find_key([mix, sco] if scores is not None else [mix], key)
    metric_cols = _columns(sco, key, list(metric_columns) if scores is None else None)
    domain_cols = {c: i for c, i in _columns(mix, key, None).items() if scores is not None or c not in metric_cols}
    if not domain_cols:
        raise DataError(f"{mix.path} has no mixture columns besides its key {key!r}; give one weight column per domain")
    if not metric_cols:
        raise DataError(f"{sco.path} has no score columns besides its key {key!r}; give one column per metric")
    metrics = {c: _metric_name(c, sco.header) for c in metric_cols}
    mix_rows, score_rows = _keys(mix, key), _keys(sco, key)
    for k, i in score_rows.items():
        if k not in mix_rows:
            raise DataError(f"{sco.path} row {i}, column {key!r}: run {k!r} has no row in {mix.path.name}; give its "
                            "mixture or remove the row")
    runs, skipped, decimals = [], [], 0
    for k, i in mix_rows.items():
        weights, d = _weights(mix, i, k, domain_cols)
        decimals = max(decimals, d)
        if k not in score_rows:
            skipped.append({"run": k, "file": str(mix.path), "row": i, "why": f"no row in {sco.path.name}"})
            continue
        got = _scores(sco, score_rows[k], k, metric_cols)
        if not got:
            skipped.append({"run": k, "file": str(sco.path), "row": score_rows[k], "why": "every score cell is empty"})
            continue
        runs.append(Run(k, i, weights, {metrics[c]: v for c, v in got.items()}, math.fsum(weights.values())))
    tolerance = max(SUM_TOLERANCE, min(MAX_ROUNDING, len(domain_cols) * 0.5 * 10.0 ** -decimals))
    for r in runs:
        _normalise(mix.path, r, tolerance)
    return RunTable(mix.path, sco.path, _layout(mix, key, list(metric_cols)), key, list(domain_cols),
                    list(metrics.values()), runs, skipped, tolerance)


def _normalise(path: Path, run: Run, tolerance: float) -> None:
    """Renormalise a run's weights to sum to 1, or raise when their sum is off by more than ``tolerance``."""
    if run.total <= 0:
        raise DataError(f"{path} row {run.row} (run {run.key!r}): the weights sum to 0; give at least one weight > 0")
    if abs(run.total - 1.0) > tolerance + 1e-12:  # float sums of decimals (0.999 + 0.001) sit on the bound
        raise DataError(f"{path} row {run.row} (run {run.key!r}): the weights sum to {run.total:.6g}, not 1 (beyond "
                        f"{tolerance:.2g}); fix the row or write the weights as shares of 1")
    run.weights = {d: w / run.total for d, w in run.weights.items()}
