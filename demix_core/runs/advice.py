"""How a recommendation on a table study reads: predicted raw scores, how far to trust each fit, the noise floor.

The predictor's out-of-fold Spearman per target says how well it ranks runs it did not see; :func:`fit_label` turns
it into a word (the Mixer's fit label and ``demix recommend`` use the same one). When mixtures were run more than
once, a predicted gain over the best run that lies within their spread is flagged: the recommendation may be no
better than that run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from demix_core.runs.noise import NoiseFloor, gains_within_noise, study_noise
from demix_core.runs.table_study import score_key, table_settings

# Out-of-fold Spearman -> label: at least 0.9 "trust", at least 0.7 "rough", else "do not trust this one".
FIT_LABELS = ((0.9, "trust"), (0.7, "rough"))
UNTRUSTED = "do not trust this one"


def fit_label(rho: float) -> str:
    """The word for a fit's out-of-fold Spearman ``rho`` (see :data:`FIT_LABELS`)."""
    if rho is None or math.isnan(rho):
        return "no fit (the runs' scores do not vary)"
    for low, label in FIT_LABELS:
        if rho >= low:
            return label
    return UNTRUSTED


@dataclass
class TableAdvice:
    """A table study's recommendation in the table's own terms.

    Attributes:
        predicted: Metric -> predicted raw score (as the table writes it).
        higher: Metric -> whether higher is better.
        spearman: Target (objective or metric) -> out-of-fold Spearman of its fit.
        gains: Objective -> predicted gain over the best run and the noise floor (see
            :func:`~demix_core.runs.noise.gains_within_noise`).
        floor: The study's noise floor.
    """

    predicted: dict[str, float]
    higher: dict[str, bool]
    spearman: dict[str, float]
    gains: dict[str, dict[str, float | str]] = field(default_factory=dict)
    floor: NoiseFloor = field(default_factory=NoiseFloor)

    def to_json(self) -> dict[str, Any]:
        """Plain data, under ``table`` in ``demix recommend --json``."""
        return {"predicted_raw": self.predicted, "higher_is_better": self.higher,
                "fit": {t: {"spearman": rho, "label": fit_label(rho)} for t, rho in self.spearman.items()},
                "noise": self.floor.to_json(), "gains": self.gains,
                "within_noise": [o for o, g in self.gains.items() if g["reading"] == "within"]}

    def lines(self) -> list[str]:
        """Predicted scores with their fit labels, and the noise note."""
        out = ["predicted scores (as in the table) and how well the predictor ranks runs it did not see "
               "(out-of-fold Spearman):"]
        width = max((len(m) for m in self.predicted), default=0)
        for m, v in self.predicted.items():
            rho = self.spearman.get(m, math.nan)
            shown = f"{rho:.2f}" if not math.isnan(rho) else "n/a"
            out.append(f"  {m:<{width}} {v:10.4f}  ({'higher' if self.higher[m] else 'lower'} is better)  "
                       f"rho {shown}  {fit_label(rho)}")
        families = {t: r for t, r in self.spearman.items() if t not in self.predicted}
        if families:
            out.append("objectives: " + ", ".join(f"{t} rho {r:.2f} {fit_label(r)}" for t, r in families.items()))
        note = self.noise_line()
        if note:
            out.append(note)
        return out

    def noise_line(self) -> str | None:
        """The predicted gain over the best run read through the noise floor, in one line (None without repeats)."""
        if not self.gains:
            return None
        by = {r: [o for o, g in self.gains.items() if g["reading"] == r] for r in ("beyond", "within", "below")}

        def shown(names: list[str]) -> str:
            return ", ".join(f"{o} {self.gains[o]['gain']:+.4g}" for o in names)

        out = (f"noise floor from {self.floor.mixtures} mixtures run more than once; predicted gain over the best run "
               "(oriented, higher is better): ")
        parts = []
        if by["within"]:
            parts.append(f"within the floor for {shown(by['within'])}: no better than the best run there, as far as "
                         "these runs can tell")
        if by["below"]:
            parts.append(f"below the best run for {shown(by['below'])} (a trade-off against the other objectives)")
        if by["beyond"]:
            parts.append(f"beyond the floor for {shown(by['beyond'])}")
        return out + "; ".join(parts)


def table_advice(study: optuna.Study, predicted: Mapping[str, float],
                 spearman: Mapping[str, float]) -> TableAdvice | None:
    """The advice for a recommendation on ``study``; None when it is not a table study.

    Args:
        study: The study.
        predicted: The recommendation's predictions per target (objectives oriented, ``metric/<name>`` raw).
        spearman: The out-of-fold Spearman per target.
    """
    settings = table_settings(study)
    if settings is None:
        return None
    raw = {m: float(predicted[score_key(m)]) for m in settings.metrics if score_key(m) in predicted}
    rho = {o: float(spearman[o]) for o in settings.objectives.groups if o in spearman and o not in raw}
    rho.update({m: float(spearman[score_key(m)]) for m in raw if score_key(m) in spearman})
    floor = study_noise(study)
    return TableAdvice(raw, dict(settings.objectives.higher), rho, gains_within_noise(study, predicted, floor), floor)
