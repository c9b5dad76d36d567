"""The token budget on the dashboard: the mixture map's infeasible shade, a feasible recommendation and its
download, and the shaded regions' exactness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demix_core.mixing.bounds import Bounds
from demix_core.search.study import create_study
from demix_core.search.worker import Worker
from demix_core.view import figures
from demix_core.workspace.budget import Budget
from demix_core.workspace.feasible import resolve_bounds
from demix_core.workspace.manifest import load_workspace

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
TIMEOUT = 120
PAGES = str(Path(__file__).resolve().parent.parent / "pages")
BUDGET = {"target_tokens": 5000, "max_epochs": 1,
          "datasets": {"alpha": {"max_epochs": 2, "min_weight": 0.1}, "gamma": {"max_weight": 0.5}}}


@pytest.fixture()
def budget_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    ws = load_workspace(tiny_workspace)
    ws.budget = Budget.from_dict(BUDGET)
    ws.save()
    return tiny_workspace


def _inside(point: np.ndarray, poly: np.ndarray) -> bool:
    """Whether a ternary point lies in a convex ternary polygon (2D cross products of its edges)."""
    def xy(p: np.ndarray) -> np.ndarray:
        return np.array([p[1] + 0.5 * p[2], p[2] * np.sqrt(3) / 2])
    q, pts = xy(point), [xy(p) for p in poly]
    signs = [np.cross(b - a, q - a) for a, b in zip(pts, pts[1:] + pts[:1])]
    return all(s >= -1e-12 for s in signs) or all(s <= 1e-12 for s in signs)


def test_infeasible_regions_cover_exactly_the_infeasible_mixtures() -> None:
    lo, hi = np.array([0.1, 0.0, 0.2]), np.array([0.6, 0.45, 1.0])
    regions = figures.infeasible_regions(lo, hi)
    assert len(regions) == 4  # two upper bounds under 1, two lower bounds over 0
    pts = np.random.default_rng(0).dirichlet(np.ones(3), size=3000)
    for p in pts:
        outside = bool(np.any(p < lo - 1e-9) or np.any(p > hi + 1e-9))
        near_edge = bool(np.any(np.abs(p - lo) < 1e-6) or np.any(np.abs(p - hi) < 1e-6))
        if not near_edge:
            assert any(_inside(p, r) for r in regions) == outside
    groups = figures.group_bounds(Bounds(("a", "b", "c", "d"), (0.1, 0, 0.05, 0.05), (0.5, 0.3, 0.3, 0.5)),
                                  [[0], [1], [2, 3]])
    assert np.allclose(groups[0], [0.1, 0, 0.1]) and np.allclose(groups[1], [0.5, 0.3, 0.8])


def test_study_map_shades_outside_the_budget_and_recommend_stays_inside(budget_ws: Path) -> None:
    ws = load_workspace(budget_ws)
    create_study(ws, "bud", sampler="random")
    Worker(ws, "bud", device="cpu", log=lambda s: None).run(10)
    at = AppTest.from_file(PAGES + "/study.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    specs = [el.proto.spec for el in at.get("plotly_chart")]
    assert any("outside the token budget" in s for s in specs)
    assert any("outside the token budget" in c.value for c in at.caption)

    at = AppTest.from_file(PAGES + "/recommend.py", default_timeout=TIMEOUT).run()
    at.number_input(key="samples").set_value(5000)
    at.radio(key="rec_against").set_value("none").run()  # the plain recommendation (no mixture to beat)
    at.button(key="run_rec").click().run()
    assert not at.exception
    mix = at.dataframe[0].value.set_index("component")["weight"]
    bounds = Bounds(ws.component_names, (0.1, 0.0, 0.0), (0.4, 0.4, 0.5))
    assert bounds.feasible(mix.loc[list(ws.component_names)].to_numpy(dtype=float))
    assert at.get("download_button") and not at.warning
    at.number_input(key="rec_export_target").set_value(50_000).run()  # beyond every cap: the reason, no file
    # the caps allow 1,000 x 2 + 2,000 x 1 + 3,000 x 1 = 7,000 tokens: the dataset this mixture repeats furthest
    # past its cap is named, with the target that fits this mixture
    shown = at.warning[0].value if at.warning else ""
    assert " would be repeated " in shown and "(they allow 7,000)" in shown and "for this mixture" in shown
    need = {n: float(mix[n]) * 50_000 / a / e for n, a, e in (("alpha", 1000, 2), ("beta", 2000, 1),
                                                              ("gamma", 3000, 1))}
    assert shown.startswith(f"dataset {max(need, key=need.__getitem__)!r} would be repeated")
    assert not at.get("download_button")


def test_mixer_cannot_set_an_infeasible_mixture(budget_ws: Path) -> None:
    ws = load_workspace(budget_ws)
    bounds = resolve_bounds(ws)
    names = list(ws.component_names)
    at = AppTest.from_file(PAGES + "/mixer.py", default_timeout=TIMEOUT)
    at.query_params["mixture"] = "alpha=0.9,beta=0.05,gamma=0.05"  # a shared link outside the budget
    at.run()
    assert not at.exception

    def units() -> dict[str, int]:
        out = {n: round(at.slider(key=f"w_{n}").value * 10_000) for n in names}
        assert out == {n: round(at.number_input(key=f"n_{n}").value * 10_000) for n in names}  # both widgets agree
        assert sum(out.values()) == 10_000 and bounds.feasible(np.array(list(out.values())) / 10_000, tol=1e-12)
        return out

    assert units()["alpha"] == 4000 and any("Moved the mixture into" in i.value for i in at.info)
    captions = [c.value for c in at.caption]
    assert "alpha: 0.1000 – 0.4000 under the budget" in captions
    assert any("Bounds from the workspace's token budget" in c for c in captions)
    at.slider(key="w_beta").set_value(0.1).run()
    at.slider(key="w_alpha").set_value(0.05).run()  # below alpha's min weight 0.1: clamped to it
    assert units()["alpha"] == 1000
    at.number_input(key="n_gamma").set_value(0.9).run()  # past gamma's max weight 0.5: clamped to it
    assert units()["gamma"] == 5000
    at.checkbox(key="lock_gamma").check().run()
    at.slider(key="w_beta").set_value(0.0).run()  # gamma held at 0.5, alpha at most 0.4: beta cannot go under 0.1
    assert units() == {"alpha": 4000, "beta": 1000, "gamma": 5000}
    assert "beta: 0.0000 – 0.4000 under the budget; 0.1000 – 0.4000 with the locks" in [c.value for c in at.caption]
    assert at.query_params["mixture"] == "alpha=0.4000,beta=0.1000,gamma=0.5000"
    assert not at.exception and at.get("download_button")  # the training-framework export is beside the recipes
    assert any(b.proto.label == "Download for olmo-core" for b in at.get("download_button"))
    assert at.button(key="mixer_train").proto.label == "Train as reference"  # an editor (local) may train it


def test_mixer_takes_the_studys_bounds_and_shades_its_map(budget_ws: Path) -> None:
    ws = load_workspace(budget_ws)
    create_study(ws, "bud", sampler="random")
    Worker(ws, "bud", device="cpu", log=lambda s: None).run(6)
    ws.budget = Budget()  # the study keeps the bounds it was created with, whatever the workspace says now
    ws.save()
    at = AppTest.from_file(PAGES + "/mixer.py", default_timeout=TIMEOUT)
    at.query_params["study"] = "bud"
    at.run()
    assert not at.exception
    at.slider(key="w_gamma").set_value(1.0).run()
    assert round(at.slider(key="w_gamma").value * 10_000) == 5000  # the study's max weight for gamma
    assert any("Bounds from study bud's token budget" in c.value for c in at.caption)
    spec = at.get("plotly_chart")
    assert any("outside the token budget" in el.proto.spec for el in spec)


def test_mixer_download_states_the_default_cap_and_warns_past_it(tiny_workspace: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    at = AppTest.from_file(PAGES + "/mixer.py", default_timeout=TIMEOUT)
    at.query_params["mixture"] = "alpha=0.2,beta=0.3,gamma=0.5"
    at.run()
    assert not at.exception
    # no budget: every dataset's cap is the default 4 epochs; alpha (1,000 tokens x 4 / 0.2) limits this mixture to
    # 20,000 tokens, so the download starts there (feasible), with separators and the most it can take
    captions = [c.value for c in at.caption]
    assert "20,000 tokens; this mixture can train on up to 20,000 within the epoch caps" in captions
    assert not at.warning and [b for b in at.get("download_button") if b.proto.label.startswith("Download for")]
    at.number_input(key="mix_export_target").set_value(1_000_000_000).run()
    assert "1,000,000,000 tokens; this mixture can train on up to 20,000 within the epoch caps" in [
        c.value for c in at.caption]
    assert [w.value for w in at.warning] == [
        "dataset 'alpha' would be repeated 200,000 times (cap 4 epochs): this mixture asks 0.2 x 1,000,000,000 = "
        "200,000,000 tokens of its 1,000, over by 199,996,000 tokens (past their caps too: gamma, beta); no mixture "
        "fits 1,000,000,000 target tokens at these caps (they allow 24,000), so lower the target tokens to 20,000 "
        "for this mixture"]
    assert not [b for b in at.get("download_button") if b.proto.label.startswith("Download for")]
    at.number_input(key="mix_export_target").set_value(20_000).run()  # alpha at exactly 4 epochs
    assert not at.warning and [b for b in at.get("download_button") if b.proto.label.startswith("Download for")]
    ws = load_workspace(tiny_workspace)
    ws.budget = Budget.from_dict({"max_epochs": "none"})  # unlimited: written, with the warning
    ws.save()
    at.number_input(key="mix_export_target").set_value(40_000).run()
    assert [w.value for w in at.warning] == [
        "this mixture repeats alpha 8 times (no cap), beta 6 times (no cap), gamma 6.67 times (no cap), above 4 "
        "epochs: repeated data beyond ~4 epochs loses most of its value (Muennighoff et al. 2023); lower the target "
        "tokens or those weights"]
    assert [b for b in at.get("download_button") if b.proto.label.startswith("Download for")]
