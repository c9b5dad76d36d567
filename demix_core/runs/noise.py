"""The noise floor of a table of runs: how far apart the scores of one mixture run more than once (seeds) lie.

Runs whose weights agree to :data:`DECIMALS` decimals are repeats of one mixture. Per metric, the floor is the
pooled within-mixture standard deviation, ``sqrt(sum over mixtures of sum (v - mean)^2 / sum (n - 1))``: the
spread a score shows without any change of mixture. A recommendation whose predicted gain over the best run lies
within that floor may be no better than the best run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from demix_core.runs.table_study import imported, raw_scores
from demix_core.search import record

DECIMALS = 6


@dataclass
class NoiseFloor:
    """Per metric, the pooled spread of repeated mixtures.

    Attributes:
        spread: Metric or objective -> pooled within-mixture standard deviation (only those measured on repeats).
        mixtures: How many mixtures were run more than once.
        runs: How many runs those repeats hold.
    """

    spread: dict[str, float] = field(default_factory=dict)
    mixtures: int = 0
    runs: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"spread": dict(self.spread), "mixtures": self.mixtures, "runs": self.runs}


def repeat_groups(x: np.ndarray, *, decimals: int = DECIMALS) -> list[np.ndarray]:
    """Row indices of each mixture that appears more than once in (n, K) weights ``x``."""
    groups: dict[tuple[float, ...], list[int]] = {}
    for i, row in enumerate(np.round(np.asarray(x, dtype=float), decimals)):
        groups.setdefault(tuple(row.tolist()), []).append(i)
    return [np.array(g) for g in groups.values() if len(g) > 1]


def noise_floor(x: np.ndarray, y: Mapping[str, np.ndarray], *, decimals: int = DECIMALS) -> NoiseFloor:
    """The noise floor of runs with (n, K) weights ``x`` and {metric: (n,)} scores ``y`` (NaN: not measured).

    Returns:
        The floor; empty when no mixture was run twice.
    """
    groups = repeat_groups(x, decimals=decimals)
    out = NoiseFloor(mixtures=len(groups), runs=sum(len(g) for g in groups))
    for name, values in y.items():
        v = np.asarray(values, dtype=float)
        ss, df = 0.0, 0
        for g in groups:
            seen = v[g][np.isfinite(v[g])]
            if len(seen) > 1:
                ss += float(((seen - seen.mean()) ** 2).sum())
                df += len(seen) - 1
        if df:
            out.spread[name] = math.sqrt(ss / df)
    return out


def study_noise(study: optuna.Study) -> NoiseFloor:
    """The noise floor of a table study's runs: per objective (oriented values) and per metric (raw scores)."""
    trials = list(imported(study).values())
    names = record.components(study.user_attrs)
    objectives = record.domains(study)
    x = np.array([[float((record.mixture(t) or {}).get(n, 0.0)) for n in names] for t in trials])
    y: dict[str, np.ndarray] = {o: np.array([t.values[i] for t in trials], dtype=float)
                                for i, o in enumerate(objectives)}
    raw = [raw_scores(t) for t in trials]
    for m in sorted({m for s in raw for m in s} - set(y)):
        y[m] = np.array([s.get(m, math.nan) for s in raw], dtype=float)
    return noise_floor(x.reshape(len(trials), len(names)), y)


def gains_within_noise(study: optuna.Study, predicted: Mapping[str, float],
                       floor: NoiseFloor | None = None) -> dict[str, dict[str, float | str]]:
    """Per objective with a floor: a recommendation's predicted gain over the study's best run on that objective,
    read through the noise floor.

    Args:
        study: A table study.
        predicted: The recommendation's predicted (oriented: higher is better) objective values.
        floor: The study's noise floor (default: :func:`study_noise`).

    Returns:
        {objective: {"best": the best run's value, "predicted", "gain", "floor", "reading"}}, where reading is
        ``beyond`` (gain > floor), ``within`` (|gain| <= floor: no better than the best run, as far as these runs can
        tell) or ``below`` (gain < -floor: a trade-off against other objectives); empty when no mixture was run twice.
    """
    floor = floor or study_noise(study)
    objectives = record.domains(study)
    trials = list(imported(study).values())
    out: dict[str, dict[str, float | str]] = {}
    for i, o in enumerate(objectives):
        if o not in floor.spread or o not in predicted or not trials:
            continue
        best = max(float(t.values[i]) for t in trials)
        gain, sd = float(predicted[o]) - best, floor.spread[o]
        reading = "beyond" if gain > sd else "within" if gain >= -sd else "below"
        out[o] = {"best": best, "predicted": float(predicted[o]), "gain": gain, "floor": sd, "reading": reading}
    return out
