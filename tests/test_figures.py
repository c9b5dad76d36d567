"""Plot data: Pareto masks and hypervolume against brute force and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demix_core.search.pareto import hypervolume, hypervolume_history, pareto_mask
from demix_core.view.figures import calls_figure, loop_domains, pareto_2d, ternary_coordinates


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


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    w = rng.dirichlet(np.ones(4), size=12)
    out = pd.DataFrame({"number": range(12), **{f"w:{c}": w[:, i] for i, c in enumerate("abcd")}})
    for d in ("general", "code", "math"):
        out[f"d:{d}"] = -rng.random(12)
    return out


def _texts(fig) -> str:
    """Every title and label a reader sees (layout and traces, as JSON)."""
    return fig.to_json()


def test_charts_show_plain_names_units_and_titled_colour_bars() -> None:
    from demix_core.view import figures

    f = _frame()
    d, w = [c for c in f if c.startswith("d:")], [c for c in f if c.startswith("w:")]
    two = figures.pareto_2d(f, d[0], d[1], hover=w + d)
    assert two.layout.xaxis.title.text == "general score (−bits/byte, higher is better)"
    three = figures.pareto_3d(f, *d, hover=w + d)
    assert three.layout.scene.zaxis.title.text == "math score (−bits/byte)"
    tern = figures.ternary(f[w].to_numpy(), [[0], [1], [2, 3]], ["a", "b", "c+d"], color=f["d:math"].to_numpy(),
                           color_label="d:math")
    assert tern.data[0].marker.colorbar.title.text == "math score"
    assert tern.layout.ternary.aaxis.title.text == "a share" and tern.layout.margin.t >= 50
    par = figures.parallel_coordinates(f, w + d, d[0])
    assert par.data[0].line.colorbar.title.text == "general score"
    assert [dim.label for dim in par.data[0].dimensions][:2] == ["a weight", "b weight"]
    hv = figures.hypervolume_plot(np.arange(5.0))
    assert "(" in hv.layout.xaxis.title.text and "(" in hv.layout.yaxis.title.text
    for fig in (two, three, tern, par, hv):
        text = _texts(fig)
        assert '"d:' not in text and '"w:' not in text and ">d:" not in text and "d:general" not in text
        assert fig.layout.uirevision == figures.UIREVISION  # live redraws keep zoom, camera and selection


def test_study_figure_set_is_one_set_for_page_and_report() -> None:
    from demix_core.view import figures

    f = _frame()
    every = figures.study_figures(f)
    assert [s.key for s in every] == ["front:d:general|d:code", "front:d:general|d:math", "front:d:code|d:math",
                                      "front3d", "hypervolume", "parcoords", "ternary"]
    assert every[0].title == "Pareto front: general vs code"
    tern = every[-1].figure
    assert tern.data[0].marker.colorbar.title.text == "mean score"
    assert list(tern.data[0].marker.color) == pytest.approx(f[["d:general", "d:code", "d:math"]].mean(1).tolist())
    # The page's choice: one front, the map coloured by a domain.
    page = figures.study_figures(f, pairs=[("d:math", "d:code")], color="d:math")
    keys = [s.key for s in page]
    assert keys[0] == "front:d:math|d:code" and sum(k.startswith("front:") for k in keys) == 1
    assert page[-1].figure.data[0].marker.colorbar.title.text == "math score"
    assert figures.study_figures(f.iloc[:0]) == []
    two = f.drop(columns=["w:c", "w:d", "d:math"])
    assert [s.key for s in figures.study_figures(two)] == ["front:d:general|d:code", "hypervolume", "parcoords"]


def test_calls_figure_draws_each_difference_with_its_interval_over_the_floor_band() -> None:
    calls = {"natural": {"general": {"difference": 0.03, "low": 0.01, "high": 0.06, "floor": 0.005, "call": "better"},
                         "code": {"difference": -0.01, "low": None, "high": None, "floor": None,
                                  "call": "noise unknown"}},
             "uniform": {"general": {"difference": 0.002, "low": -0.01, "high": 0.014, "floor": 0.005,
                                     "call": "within noise"}}}
    loop = {"entries": [{"role": "recommended", "calls": {}}, *({"role": r, "calls": c} for r, c in calls.items())]}
    assert loop_domains(loop) == ["general", "code"]
    fig = calls_figure(loop, "general")
    (band,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert (band.y0, band.y1) == (-0.005, 0.005)
    assert [t.x[0] for t in fig.data] == ["natural", "uniform"] and [t.y[0] for t in fig.data] == [0.03, 0.002]
    assert fig.data[0].error_y.array[0] == pytest.approx(0.03) and fig.data[0].error_y.arrayminus[0] == pytest.approx(
        0.02)
    unknown = calls_figure(loop, "code")
    assert not [s for s in unknown.layout.shapes if s.type == "rect"] and unknown.data[0].error_y.array is None
    assert unknown.layout.title.text == "code: recommended minus each baseline (noise unknown)"
