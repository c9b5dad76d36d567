"""Every search respects the token budget: samplers, the worker, enqueue, the DeMix caps and the recommendation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from demix_core.errors import BudgetError
from demix_core.mixing.bounds import mixture_from_trial_params
from demix_core.mixing.mixture import Mixture, mixture_from_params
from demix_core.search import samplers
from demix_core.search.predictor import recommend
from demix_core.search.record import study_bounds
from demix_core.search.rounds import DemixSampler
from demix_core.search.study import create_study, enqueue, load_study
from demix_core.workspace.budget import Budget
from demix_core.workspace.feasible import resolve_bounds
from demix_core.workspace.manifest import load_workspace

# tiny workspace: alpha 1000, beta 2000, gamma 3000 tokens (component tokens; no dataset counts)
BUDGET = {"target_tokens": 5000, "max_epochs": 1,
          "datasets": {"alpha": {"max_epochs": 2, "min_weight": 0.1}, "gamma": {"max_weight": 0.5}}}
HI = (0.4, 0.4, 0.5)  # alpha 2 x 1000 / 5000, beta 1 x 2000 / 5000, gamma min(0.5, 3000 / 5000)
LO = (0.1, 0.0, 0.0)


def _budgeted(path: Path):  # noqa: ANN202 - a Workspace
    ws = load_workspace(path)
    ws.budget = Budget.from_dict(BUDGET)
    ws.save()
    return load_workspace(path)


def _scores(w: np.ndarray) -> list[float]:
    """Three conflicting synthetic objectives with curvature (maximised)."""
    return [float(w[0] - 0.5 * w[1] ** 2), float(w[1] + 0.3 * w[0] * w[2]), float(w[2] - 0.2 * w[0])]


@pytest.mark.parametrize("sampler", samplers.names())
def test_every_sampler_proposes_only_feasible_mixtures(tiny_workspace: Path, sampler: str, tmp_path: Path,
                                                        one_torch_thread: None) -> None:
    ws = _budgeted(tiny_workspace)
    storage = f"journal:{tmp_path / 'trials.log'}"  # the journal file: ~5x faster than SQLite per trial
    create_study(ws, f"s-{sampler}", sampler=sampler, n_trials=30, seed=3, storage=storage)
    study = load_study(ws, f"s-{sampler}", storage=storage)
    bounds = study_bounds(ws, study.user_attrs)
    assert bounds.hi == pytest.approx(HI) and bounds.lo == LO
    names = ws.component_names
    evaluated = []

    def objective(trial: optuna.Trial) -> list[float]:  # the worker's mapping, a synthetic score
        params = {f"u_{n}": trial.suggest_float(f"u_{n}", 0.0, 1.0) for n in names}
        mix = mixture_from_trial_params(names, params, bounds)
        trial.set_user_attr("mixture", mix.as_dict())
        evaluated.append(mix.array())
        return _scores(mix.array())

    study.optimize(objective, n_trials=30)
    trials = study.get_trials()
    assert len(trials) == 30 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    w = np.array(evaluated)
    assert np.all(bounds.feasible(w)), w[~bounds.feasible(w)]
    assert len({tuple(np.round(r, 6)) for r in w}) >= 12  # a search, not one point repeated (demix: a 0.05 grid)
    if sampler in ("front", "demix"):  # these propose feasible mixtures themselves, before any mapping
        raw = np.array([mixture_from_params(names, t.params).weights for t in trials])
        assert np.all(bounds.feasible(raw, tol=1e-9))


def test_worker_records_feasible_mixtures_and_enqueue_refuses_infeasible(tiny_workspace: Path,
                                                                         one_torch_thread: None) -> None:
    from demix_core.search.worker import Worker

    ws = _budgeted(tiny_workspace)
    create_study(ws, "w", sampler="tpe")
    worker = Worker(ws, "w", device="cpu", log=lambda s: None)
    with pytest.raises(BudgetError, match=r"'gamma': weight 0\.6 is above its max weight 0\.5"):
        enqueue(worker.study, Mixture.from_weights(ws.component_names, [0.2, 0.2, 0.6]))
    enqueue(worker.study, Mixture.from_weights(ws.component_names, [0.3, 0.3, 0.4]))
    assert worker.run(4) == 4
    trials = worker.study.get_trials()
    bounds = study_bounds(ws, worker.study.user_attrs)
    for t in trials:
        mix = np.array([t.user_attrs["mixture"][n] for n in ws.component_names])
        assert bounds.feasible(mix)
        again = mixture_from_trial_params(ws.component_names, t.params, bounds)  # params still name the mixture
        assert np.allclose(again.weights, mix, atol=1e-12)
    assert trials[0].user_attrs["mixture"]["alpha"] == pytest.approx(0.3, abs=1e-12)


def test_infeasible_budget_refuses_the_study(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    ws.budget = Budget.from_dict({"target_tokens": 100_000, "max_epochs": 4})  # 4 x 6000 = 24,000 < 100,000
    with pytest.raises(BudgetError, match=r"short by 76,000 tokens; the largest dataset, 'gamma'"):
        create_study(ws, "x")


def test_demix_caps_and_recommendation_are_feasible(tiny_workspace: Path) -> None:
    ws = _budgeted(tiny_workspace)
    bounds = resolve_bounds(ws)
    sampler = DemixSampler.for_workspace(ws, seed=0, n_trials=30, bounds=bounds)
    assert sampler.prior.caps == pytest.approx(HI)  # the paper's caps from the same rule
    draws = sampler.prior.sample(500, seed=1)
    assert np.all(draws <= np.array(HI) + 1e-12)
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(3), size=40)
    y = {"general": x[:, 0] * 2, "code": x[:, 1], "math": x[:, 2] - x[:, 0]}
    free = recommend(x, y, ws.component_names, ["general", "code", "math"], top_k=16, samples=4000)
    assert not bounds.feasible(free.mixture.array())  # unconstrained, it goes where the budget forbids
    rec = recommend(x, y, ws.component_names, ["general", "code", "math"], top_k=16, samples=4000, bounds=bounds)
    assert bounds.feasible(rec.mixture.array())
    assert all(bounds.feasible(np.array(list(n["mixture"].values()))) for n in rec.neighbours)


def test_cli_create_shows_the_budget_and_enqueue_refuses_with_one_line(tiny_workspace: Path, capsys) -> None:
    from demix_core.cli import main

    _budgeted(tiny_workspace)
    root = ["--workspace", str(tiny_workspace), "--study", "c"]
    assert main(["study", "create", *root, "--sampler", "random"]) == 0
    assert "token budget, weights within: alpha 0.100..0.400, beta 0.000..0.400, gamma 0.000..0.500" in \
        capsys.readouterr().out
    assert main(["study", "enqueue", *root, "--mixture", "alpha=0.05,beta=0.45,gamma=0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # beta past its epoch cap (0.45 x 5,000 = 2,250 of 2,000 tokens x 1 epoch) is named before alpha's min weight
    assert err == ["error: dataset 'beta' would be repeated 1.12 times (cap 1 epoch): this mixture asks 0.45 x 5,000 "
                   "= 2,250 tokens of its 2,000, over by 250 tokens; lower beta's weight to 0.4 or the target tokens "
                   "to 4,444, or allow beta 1.13 epochs"]
    assert main(["study", "enqueue", *root, "--mixture", "alpha=0.05,beta=0.4,gamma=0.55"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: dataset 'alpha': weight 0.05 is below its min weight 0.1 by 0.05; raise it or lower "
                   "alpha's min weight"]
