"""Mixture parsing and validation, the Optuna simplex bridge, and the DeMix Dirichlet sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demix_core.errors import MixtureError
from demix_core.mixing.mixture import DirichletPrior, Mixture, mixture_from_params, params_from_mixture

NAMES = ("general", "code", "math")


def test_parse_named_and_positional_agree() -> None:
    a = Mixture.parse("general=0.5,code=0.3,math=0.2", NAMES)
    b = Mixture.parse("0.5, 0.3, 0.2", NAMES)
    assert a == b
    assert a.weights == pytest.approx((0.5, 0.3, 0.2), abs=1e-12)


def test_parse_normalises_and_fills_missing_with_zero() -> None:
    m = Mixture.parse("general=2,math=2", NAMES)
    assert m.as_dict() == {"general": 0.5, "code": 0.0, "math": 0.5}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("general=-0.1,code=1.1", "negative"),
        ("general=nan,code=1", "finite"),
        ("0,0,0", "sum to 0"),
        ("0.5,0.5", "2 weights for 3 components"),
        ("general=0.5,physics=0.5", "unknown component 'physics'"),
        ("general=0.5,0.5", "mixes"),
        ("general=abc", "not a number"),
        ("", "empty"),
    ],
)
def test_bad_mixtures_give_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(MixtureError) as info:
        Mixture.parse(text, NAMES)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_not_normalised_must_sum_to_one() -> None:
    with pytest.raises(MixtureError, match="sum to 0.9"):
        Mixture.from_weights(NAMES, [0.3, 0.3, 0.3], normalize=False)


def test_optuna_params_round_trip() -> None:
    m = Mixture.parse("0.6,0.1,0.3", NAMES)
    back = mixture_from_params(NAMES, params_from_mixture(m))
    assert back.weights == pytest.approx(m.weights, abs=1e-12)


def test_optuna_params_zero_weight_round_trips() -> None:
    m = Mixture.parse("1,0,0", NAMES)
    assert mixture_from_params(NAMES, params_from_mixture(m)).weights == pytest.approx((1, 0, 0))


def test_dirichlet_prior_respects_caps_grid_and_sum() -> None:
    prior = DirichletPrior(NAMES, tokens=(8e6, 1e6, 1e6), temperature=0.5, concentration=1.0,
                           caps=(0.6, 0.5, 0.5), grid=0.05)
    x = prior.sample(500, seed=3)
    assert x.shape == (500, 3)
    assert np.allclose(x.sum(axis=1), 1.0, atol=1e-12)
    assert (x <= np.array([0.6, 0.5, 0.5]) + 1e-12).all()
    assert (x >= 0).all()
    steps = x / 0.05
    assert np.allclose(steps, np.round(steps), atol=1e-9)
    # The prior pulls the mean towards the big dataset (capped at 0.6).
    assert x[:, 0].mean() > x[:, 1].mean()


def test_dirichlet_prior_is_seeded() -> None:
    prior = DirichletPrior(NAMES, tokens=(1.0, 2.0, 3.0))
    assert np.array_equal(prior.sample(20, seed=1), prior.sample(20, seed=1))
    assert not np.array_equal(prior.sample(20, seed=1), prior.sample(20, seed=2))


def test_dirichlet_prior_temperature_flattens() -> None:
    sharp = DirichletPrior(NAMES, tokens=(9.0, 1.0, 1.0), temperature=1.0).prior()
    flat = DirichletPrior(NAMES, tokens=(9.0, 1.0, 1.0), temperature=100.0).prior()
    assert sharp[0] == pytest.approx(9 / 11)
    assert abs(flat[0] - 1 / 3) < 0.01
    assert math.isclose(flat.sum(), 1.0)


def test_impossible_caps_are_refused() -> None:
    with pytest.raises(MixtureError, match="caps"):
        DirichletPrior(NAMES, tokens=(1.0, 1.0, 1.0), caps=(0.2, 0.2, 0.2))
