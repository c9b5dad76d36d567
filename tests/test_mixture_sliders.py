"""Slider arithmetic beside Mixture: rebalancing on the plain simplex with locks (no Streamlit): the one slider
algorithm, :func:`~demix_core.mixing.bounds.slider_move`, on bounds [0, 1] and the sliders' 1e-4 grid."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from demix_core.errors import MixtureError
from demix_core.mixing.bounds import Bounds, slider_move
from demix_core.mixing.mixture import Mixture
from demix_core.mixing.pairs import format_pairs


def rebalance(weights: Mapping[str, float], moved: str, locked: Iterable[str] = ()) -> dict[str, float]:
    """One slider moved on the plain simplex, exact at 4 decimals."""
    return slider_move(weights, moved, locked, Bounds.free(list(weights)), digits=4)


def test_free_weights_absorb_the_change_in_proportion() -> None:
    out = rebalance({"a": 0.5, "b": 0.3, "c": 0.1}, "a")  # a moved from 0.6 to 0.5: 0.5 left for b, c (3:1)
    assert out == {"a": 0.5, "b": 0.375, "c": 0.125}
    assert list(out) == ["a", "b", "c"]


def test_locked_weight_stays() -> None:
    out = rebalance({"a": 0.7, "b": 0.2, "c": 0.2}, "a", ["c"])
    assert out == {"a": 0.7, "b": 0.1, "c": 0.2}


def test_moved_weight_is_capped_by_the_locked_ones() -> None:
    out = rebalance({"a": 0.9, "b": 0.2, "c": 0.3}, "a", ["c"])
    assert out["a"] == pytest.approx(0.7) and out["b"] == 0.0 and out["c"] == 0.3


def test_every_other_weight_locked_sets_the_moved_one_to_the_rest() -> None:
    assert rebalance({"a": 0.9, "b": 0.25, "c": 0.25}, "a", ["b", "c", "a"]) == {"a": 0.5, "b": 0.25, "c": 0.25}


def test_all_free_weights_at_zero_share_equally() -> None:
    assert rebalance({"a": 0.4, "b": 0.0, "c": 0.0}, "a") == {"a": 0.4, "b": 0.3, "c": 0.3}


def test_rounding_and_the_result_parses_as_a_mixture() -> None:
    out = rebalance({"a": 0.33, "b": 0.1, "c": 0.2, "d": 0.4}, "a")
    assert all(round(w, 4) == w for w in out.values())
    mix = Mixture.parse(format_pairs(out, digits=4), ("a", "b", "c", "d"))
    assert mix.weights[0] == pytest.approx(0.33, abs=1e-3)
    assert format_pairs({"a": 0.5, "b": 0.5}, digits=4) == "a=0.5000,b=0.5000"


def test_unknown_names_are_refused() -> None:
    with pytest.raises(MixtureError, match="unknown component 'z'"):
        rebalance({"a": 1.0}, "z")
    with pytest.raises(MixtureError, match="unknown component 'y'"):
        rebalance({"a": 0.5, "b": 0.5}, "a", ["y"])


def test_a_bound_that_does_not_bind_changes_nothing_and_ties_go_to_the_first() -> None:
    free = rebalance({"a": 0.3333, "b": 0.3, "c": 0.3}, "a")  # 6667 units for b and c, 1:1: b gets the odd one
    assert free == {"a": 0.3333, "b": 0.3334, "c": 0.3333}
    loose = Bounds(("a", "b", "c"), (0.0, 0.1, 0.1), (0.9, 0.5, 0.5))
    assert slider_move({"a": 0.3333, "b": 0.3, "c": 0.3}, "a", [], loose, digits=4) == free
    tight = Bounds(("a", "b", "c"), (0.0, 0.0, 0.0), (1.0, 0.3, 1.0))  # b's cap binds: c takes the rest
    assert slider_move({"a": 0.2, "b": 0.3, "c": 0.3}, "a", [], tight, digits=4) == {"a": 0.2, "b": 0.3, "c": 0.5}
