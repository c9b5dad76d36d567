"""Plot data: Pareto masks and hypervolume against brute force and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demix_core.figures import pareto_2d, ternary_coordinates
from demix_core.pareto import hypervolume, hypervolume_history, pareto_mask


def brute_force_front(v: np.ndarray) -> np.ndarray:
    return np.array([not any(np.all(o >= r) and np.any(o > r) for o in v) for r in v])


@pytest.mark.parametrize("m", [2, 3])
def test_pareto_mask_matches_brute_force(m: int) -> None:
    rng = np.random.default_rng(m)
    v = np.round(rng.normal(size=(200, m)), 1)  # rounding makes ties
    assert np.array_equal(pareto_mask(v), brute_force_front(v))


def test_hypervolume_hand_computed() -> None:
    # Points (1,3), (2,2), (3,1) above (0,0): staircase area 3 + 2 + 1 = 6.
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1]]), [0, 0]) == pytest.approx(6.0)
    # A dominated point adds nothing; points below the reference add nothing.
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1], [1, 1], [-1, 5]]), [0, 0]) == pytest.approx(6.0)
    # 3D box.
    assert hypervolume(np.array([[1, 2, 3]]), [0, 0, 0]) == pytest.approx(6.0)


def test_hypervolume_history_is_monotone() -> None:
    rng = np.random.default_rng(0)
    h = hypervolume_history(rng.random((30, 2)), [0, 0])
    assert np.all(np.diff(h) >= -1e-12)
    assert h[-1] > h[0]


def test_ternary_groups_sum_to_one() -> None:
    w = np.array([[0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0]])
    t = ternary_coordinates(w, [[0], [1], [2, 3]])
    assert np.allclose(t, [[0.1, 0.2, 0.7], [1, 0, 0]])


def test_pareto_2d_marks_front() -> None:
    frame = pd.DataFrame({"number": [0, 1, 2], "a": [1.0, 2.0, 0.5], "b": [2.0, 1.0, 0.5]})
    fig = pareto_2d(frame, "a", "b", hover=["a"])
    dominated, front = fig.data[0], fig.data[1]
    assert list(front.customdata) == [0, 1]
    assert list(dominated.customdata) == [2]


def test_sampled_hypervolume_history_matches_full() -> None:
    rng = np.random.default_rng(1)
    v = rng.random((120, 3))
    full = hypervolume_history(v, [0, 0, 0])
    sampled = hypervolume_history(v, [0, 0, 0], points=10)
    assert len(sampled) == 120
    assert sampled[-1] == pytest.approx(full[-1]) == pytest.approx(hypervolume(v, [0, 0, 0]))
    assert np.all(sampled <= full + 1e-12) and np.all(np.diff(sampled) >= -1e-12)
