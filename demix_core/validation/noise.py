"""The noise floor of validation: how far apart the scores of one mixture trained at several seeds lie.

References whose weights agree to 1e-6 are repeats of one mixture (``demix workspace train-reference --seed S``).
Per domain, the floor is their pooled within-mixture standard deviation (:func:`demix_core.runs.noise.noise_floor`,
the one formula for it). A difference between two trained models is read through it (:func:`noise_call`): within
the floor of its domain it is ``within noise``, never better or worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from demix_core.runs.noise import NoiseFloor, noise_floor

WITHIN = "within noise"
UNKNOWN = "noise unknown"


def reference_noise(components: Sequence[str], mixtures: Sequence[Mapping[str, float]],
                    scores: Mapping[str, Sequence[float]]) -> NoiseFloor:
    """The noise floor of trained models with ``mixtures`` over ``components`` and per-domain ``scores`` (one per
    model, in the same order); empty (no ``spread``) when no mixture was trained twice."""
    x = np.array([[float(m.get(c, 0.0)) for c in components] for m in mixtures], dtype=float)
    y = {d: np.asarray(v, dtype=float) for d, v in scores.items()}
    return noise_floor(x.reshape(len(mixtures), len(components)), y)


def noise_call(difference: float, floor: float | None) -> str:
    """A per-domain difference (higher is better) read through that domain's floor: ``within noise`` when
    ``|difference| <= floor``, else ``better`` or ``worse``; ``noise unknown`` without a floor."""
    if floor is None:
        return UNKNOWN
    if abs(difference) <= floor:
        return WITHIN
    return "better" if difference > 0 else "worse"


def measure_command(root: Any, components: Sequence[str]) -> str:
    """The one command that measures the floor: the uniform mixture trained again at seed 1 (its seed-0 model is
    the second run; ``demix recommend --train`` trains uniform as a baseline)."""
    weights = ",".join(f"{c}={1 / len(components):.6g}" for c in components)
    return f"demix workspace train-reference {root} --mixture {weights} --seed 1"


def floor_json(floor: NoiseFloor | None, command: str) -> tuple[dict[str, Any] | None, str | None]:
    """(``noise_floor``, ``noise_reason``) for ``--json``: {"domains": {domain: sd}, "mixtures", "runs"} and None,
    or None and why the noise is unknown."""
    if floor is not None and floor.spread:
        return {"domains": dict(floor.spread), "mixtures": floor.mixtures, "runs": floor.runs}, None
    return None, f"no mixture was trained twice; measure it with `{command}`"


def floor_line(floor: NoiseFloor | None, command: str) -> str:
    """One printable line: the floor per domain and what it is pooled over, or why it is unknown."""
    if floor is not None and floor.spread:
        return (f"noise floor (seed sd, pooled over {floor.mixtures} repeated mixture(s), {floor.runs} models): "
                + ", ".join(f"{d} {sd:.3g}" for d, sd in floor.spread.items()))
    return f"noise unknown: {floor_json(floor, command)[1]}"


def study_floor(ws: Any, study: Any) -> tuple[dict[str, float] | None, str]:
    """The noise floor a study's recommendation is judged with, per domain, and where it comes from: a table
    study's repeated runs, else the last validation of the study's suite (its repeated trained models); None and
    the command that measures it when there is none."""
    from demix_core.search import record
    from demix_core.workspace.records import read_validation

    domains = record.domains(study)
    if getattr(ws, "is_table", False):
        from demix_core.runs.noise import study_noise

        floor = study_noise(study)
        got = {d: floor.spread[d] for d in domains if d in floor.spread}
        return (got or None), (f"the seed sd of {floor.runs} repeated runs" if got else
                               "no run of the table repeats a mixture; import repeated runs to measure it")
    suite = record.suite(study.user_attrs) or getattr(ws, "suite", None) or "quick"
    data = read_validation(ws, suite) or {}
    spread = (data.get("noise_floor") or {}).get("domains") or {}
    got = {d: float(spread[d]) for d in domains if d in spread}
    if got:
        nf = data["noise_floor"]
        return got, (f"the seed sd of {nf.get('mixtures')} repeated trained mixture(s) ({nf.get('runs')} models) in "
                     f"the {suite} validation of {data.get('written', 'its last run')}")
    return None, (f"no repeated trained mixture in the {suite} validation; measure it with "
                  f"`{measure_command(ws.root, ws.component_names)}`, then `demix validate`")
