"""The front sampler and its Scheffé surrogate: exact fits, exact hypervolume gains, design order,
spreading over pending trials, and a front filled faster than random sampling."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import optuna
import pytest

from demix_core.mixing.mixture import mixture_from_params, param_name
from demix_core.search.front import FrontSampler, candidate_mixtures, hypervolume_gain, simplex_design
from demix_core.search.pareto import hypervolume
from demix_core.search.scheffe import ScheffeModel, features

NAMES = ("a", "b", "c", "d")


def test_features_are_the_full_cubic_scheffe_terms() -> None:
    x = np.array([[0.5, 0.3, 0.2]])
    f = features(x)[0]
    a, b, c = 0.5, 0.3, 0.2
    expected = [a, b, c, a * b, a * c, b * c, a * b * (a - b), a * c * (a - c), b * c * (b - c), a * b * c]
    assert f == pytest.approx(expected, abs=1e-15)
    assert features(np.eye(4)).shape == (4, 4 + 6 + 6 + 4)


def test_scheffe_fit_recovers_a_polynomial_exactly() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([np.eye(4), rng.dirichlet(np.ones(4), 60)])
    true = rng.normal(size=(features(x).shape[1], 2))
    y = features(x) @ true
    model = ScheffeModel.fit(x, y, bootstrap=0)
    test = rng.dirichlet(np.ones(4), 20)
    mean, spread = model.predict(test)
    assert mean == pytest.approx(features(test) @ true, abs=1e-3)
    assert not spread.any()


def test_scheffe_with_only_the_pure_components_is_the_linear_blend() -> None:
    y = np.array([[1.0], [2.0], [4.0]])
    model = ScheffeModel.fit(np.eye(3), y, bootstrap=4)
    mean, spread = model.predict(np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]))
    assert mean[:, 0] == pytest.approx([1.5, 0.2 + 0.6 + 2.0], abs=1e-3)
    assert spread.shape == (2, 1) and (spread >= 0).all()


def test_hypervolume_gain_is_exact_in_two_dimensions() -> None:
    front = np.array([[3.0, 1.0], [1.0, 3.0]])
    ref = np.array([0.0, 0.0])
    points = np.array([[2.0, 2.0], [0.5, 0.5], [4.0, 0.5], [3.0, 1.0]])
    gain = hypervolume_gain(points, front, ref)
    # [2,2] adds the 1x1 square between the two front points; [4,0.5] adds a 1x0.5 strip; the others nothing
    assert gain == pytest.approx([1.0, 0.0, 0.5, 0.0])
    for p, g in zip(points, gain):
        assert g == pytest.approx(hypervolume(np.vstack([front, p]), ref) - hypervolume(front, ref))


def test_candidates_lie_on_the_simplex_and_include_edges() -> None:
    c = candidate_mixtures(4, 500, seed=1)
    assert c.shape == (500, 4) and np.allclose(c.sum(axis=1), 1) and (c >= 0).all()
    assert ((c > 0).sum(axis=1) == 2).sum() >= 6 * 4  # two-component blends on every edge


def _objective(trial: optuna.Trial, true: np.ndarray) -> list[float]:
    params = {param_name(n): trial.suggest_float(param_name(n), 0.0, 1.0) for n in NAMES}
    x = np.array(mixture_from_params(NAMES, params).weights)
    return list(features(x[None])[0] @ true)


def _synthetic(seed: int) -> np.ndarray:
    """Three objectives, each best at its own component, with curved blends (a Scheffé cubic)."""
    rng = np.random.default_rng(seed)
    width = features(np.eye(4)).shape[1]
    true = np.zeros((width, 3))
    true[:4] = -1.0 + 0.1 * rng.normal(size=(4, 3))
    for m in range(3):
        true[m, m] = 0.0
    true[4:] = 0.5 * rng.normal(size=(width - 4, 3))
    return true


def test_front_sampler_starts_with_the_simplex_design_and_never_repeats() -> None:
    true = _synthetic(0)
    study = optuna.create_study(directions=["maximize"] * 3, sampler=FrontSampler(NAMES, seed=0))
    study.optimize(lambda t: _objective(t, true), n_trials=12)
    xs = np.array([mixture_from_params(NAMES, t.params).weights for t in study.trials])
    assert xs[:5] == pytest.approx(simplex_design(4))
    for i, j in combinations(range(len(xs)), 2):
        assert np.abs(xs[i] - xs[j]).sum() > 0.02


def _suggested(trial: optuna.Trial) -> np.ndarray:
    return np.array(mixture_from_params(NAMES, {param_name(n): trial.suggest_float(param_name(n), 0, 1)
                                                for n in NAMES}).weights)


def test_simultaneous_first_asks_take_different_design_points() -> None:
    study = optuna.create_study(directions=["maximize"] * 3, sampler=FrontSampler(NAMES, seed=0))
    asked = [study.ask() for _ in range(3)]  # three workers start at once: none has written its mixture yet
    xs = [_suggested(t) for t in asked]
    assert np.array(xs) == pytest.approx(np.eye(4)[:3])


def test_front_sampler_spreads_over_pending_trials() -> None:
    true = _synthetic(1)
    study = optuna.create_study(directions=["maximize"] * 3, sampler=FrontSampler(NAMES, seed=0))
    study.optimize(lambda t: _objective(t, true), n_trials=8)
    asked = [study.ask() for _ in range(3)]  # three workers ask before any answers
    xs = [_suggested(t) for t in asked]
    for a, b in combinations(xs, 2):
        assert np.abs(a - b).sum() > 0.02


@pytest.mark.parametrize("seed", [0, 1])
def test_front_sampler_fills_the_front_faster_than_random(seed: int) -> None:
    true = _synthetic(seed)
    runs = {}
    for name, sampler in (("front", FrontSampler(NAMES, seed=seed)), ("random", optuna.samplers.RandomSampler(seed))):
        study = optuna.create_study(directions=["maximize"] * 3, sampler=sampler)
        study.optimize(lambda t: _objective(t, true), n_trials=40)
        runs[name] = np.array([t.values for t in study.trials])
    dense = features(np.random.default_rng(9).dirichlet(np.ones(4), 4000)) @ true
    ref = np.vstack([dense, *runs.values()]).min(axis=0)
    share = {k: hypervolume(v, ref) / hypervolume(dense, ref) for k, v in runs.items()}
    assert share["front"] > 0.9  # 40 trials reach 90% of what 4,000 dense mixtures cover
    assert share["front"] > share["random"] + 0.2


def test_front_sampler_still_proposes_when_every_candidate_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    import demix_core.search.front as front

    true = _synthetic(2)
    # the only candidates are the design points, all tried after the first five trials
    monkeypatch.setattr(front, "candidate_mixtures", lambda k, n, *, seed: simplex_design(k))
    study = optuna.create_study(directions=["maximize"] * 3, sampler=FrontSampler(NAMES, seed=0))
    study.optimize(lambda t: _objective(t, true), n_trials=8)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
