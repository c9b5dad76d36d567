"""One contract over every registered sampler: on a tiny budgeted study its proposals are mixtures (non-negative,
summing to 1) inside the budget's bounds, and the same seed gives the same proposals; plus the registry itself
(summaries, one-line unknown-name errors naming the near match, no Optuna loaded by importing it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import make_tiny_workspace

from demix_core.errors import StudyError
from demix_core.mixing.bounds import mixture_from_trial_params
from demix_core.mixing.mixture import param_name
from demix_core.search import samplers
from demix_core.search.record import study_bounds
from demix_core.search.storage import open_storage, study_names
from demix_core.search.study import create_study, load_study
from demix_core.workspace.budget import Budget
from demix_core.workspace.manifest import Workspace, load_workspace

# tiny workspace: alpha 1000, beta 2000, gamma 3000 tokens; the budget caps each weight and floors alpha's
BUDGET = {"target_tokens": 5000, "max_epochs": 1,
          "datasets": {"alpha": {"max_epochs": 2, "min_weight": 0.1}, "gamma": {"max_weight": 0.5}}}
TRIALS = 12  # past the design / startup phase of every sampler (front: 4 design points, tpe and gp: 10)


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory, tiny_family: dict[str, Path]) -> Workspace:
    root = make_tiny_workspace(tmp_path_factory.mktemp("contract") / "ws", tiny_family)
    ws = load_workspace(root)
    ws.budget = Budget.from_dict(BUDGET)
    ws.save()
    return load_workspace(root)


def _scores(w: np.ndarray) -> list[float]:
    """Three conflicting synthetic objectives with curvature (maximised)."""
    return [float(w[0] - 0.5 * w[1] ** 2), float(w[1] + 0.3 * w[0] * w[2]), float(w[2] - 0.2 * w[0])]


def _proposals(ws: Workspace, sampler: str, study: str, storage: str, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw params (n, K), mixtures the worker scores (n, K)) of ``TRIALS`` trials of a new study."""
    create_study(ws, study, sampler=sampler, n_trials=TRIALS, seed=seed, storage=storage)
    opened = load_study(ws, study, storage=storage)
    bounds = study_bounds(ws, opened.user_attrs)
    names = ws.component_names
    raw, mixtures = [], []

    def objective(trial: optuna.Trial) -> list[float]:  # the worker's mapping, a synthetic score
        params = {param_name(n): trial.suggest_float(param_name(n), 0.0, 1.0) for n in names}
        mix = mixture_from_trial_params(names, params, bounds)
        raw.append([params[param_name(n)] for n in names])
        mixtures.append(mix.array())
        return _scores(mix.array())

    opened.optimize(objective, n_trials=TRIALS)
    return np.array(raw), np.array(mixtures)


@pytest.mark.parametrize("name", samplers.names())
def test_every_sampler_proposes_feasible_mixtures_and_repeats_itself_with_one_seed(
        budgeted: Workspace, name: str, tmp_path: Path, one_torch_thread: None) -> None:
    storage = f"journal:{tmp_path / 'trials.log'}"
    raw, mixtures = _proposals(budgeted, name, "first", storage, seed=5)
    again_raw, again = _proposals(budgeted, name, "again", storage, seed=5)

    assert mixtures.shape == (TRIALS, 3)
    assert np.all(mixtures >= 0) and np.allclose(mixtures.sum(axis=1), 1.0, atol=1e-9)
    bounds = study_bounds(budgeted, load_study(budgeted, "first", storage=storage).user_attrs)
    assert not bounds.trivial
    assert np.all(bounds.feasible(mixtures)), mixtures[~bounds.feasible(mixtures)]
    assert np.array_equal(raw, again_raw) and np.array_equal(mixtures, again)  # the same seed, the same search


def test_registry_has_the_six_samplers_each_summarised() -> None:
    assert samplers.names()[:6] == ["tpe", "nsga2", "gp", "random", "demix", "front"]
    for name in samplers.names():
        spec = samplers.get(name)
        assert spec.name == name and spec.summary and "\n" not in spec.summary


@pytest.mark.parametrize(("typo", "near"), [("fornt", "front"), ("tpee", "tpe"), ("nsga", "nsga2")])
def test_unknown_sampler_is_one_line_naming_the_near_match(typo: str, near: str) -> None:
    with pytest.raises(StudyError) as err:
        samplers.get(typo)
    msg = str(err.value)
    assert f"unknown sampler {typo!r}" in msg and f"did you mean: {near}" in msg and "\n" not in msg
    assert all(n in msg for n in samplers.names())


def test_create_study_refuses_an_unknown_sampler_before_storing(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    with pytest.raises(StudyError, match=r"unknown sampler 'fornt'.*did you mean: front\?"):
        create_study(ws, "typo", sampler="fornt")
    assert "typo" not in study_names(open_storage(ws.storage_url()))


def test_a_name_registers_once() -> None:
    with pytest.raises(StudyError, match="registered twice"):
        samplers.register("tpe", samplers.get("tpe").build, summary="again")
    assert samplers.names().count("tpe") == 1


def test_importing_the_registry_loads_no_optuna() -> None:
    code = "import sys, demix_core.search.samplers as s; s.names(); print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
