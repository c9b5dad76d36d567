"""Token budgets: the feasible set, its errors, the projection, the Mixer's slider arithmetic, the manifest."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from demix_core.errors import BudgetError, WorkspaceError
from demix_core.mixing.bounds import Bounds, mixture_from_trial_params, slider_move, slider_ranges
from demix_core.mixing.mixture import Mixture, params_from_mixture
from demix_core.mixing.numbers import readable
from demix_core.workspace.budget import DEFAULT_MAX_EPOCHS, Budget
from demix_core.workspace.feasible import resolve_bounds, with_changes
from demix_core.workspace.manifest import ComponentEntry, DatasetEntry, Workspace, load_workspace

NAMES = ("prose", "code", "math")


def _ws(tmp_path: Path, tokens: dict[str, int], budget: Budget) -> Workspace:
    comps = []
    for n in tokens:
        (tmp_path / n).mkdir(exist_ok=True)
        comps.append(ComponentEntry(name=n, path=n, dataset=n))
    return Workspace(root=tmp_path, name="b", components=comps,
                     datasets=[DatasetEntry(name=n, domain="general", train=f"{n}.txt", heldout=f"{n}.txt", tokens=t)
                               for n, t in tokens.items()], budget=budget)


def test_bounds_exact_on_hand_made_budget(tmp_path: Path) -> None:
    # prose 1,000,000 x 3 epochs, code 300,000 x 4 epochs (min 0.1), math 100,000 x 1 epoch (max 0.02); target 4e6
    budget = Budget.from_dict({"target_tokens": 4_000_000, "max_epochs": 1,
                               "datasets": {"prose": {"max_epochs": 3}, "code": {"max_epochs": 4, "min_weight": 0.1},
                                            "math": {"max_weight": 0.02}}})
    ws = _ws(tmp_path, {"prose": 1_000_000, "code": 300_000, "math": 100_000}, budget)
    b = resolve_bounds(ws)
    assert b.hi == (0.75, 0.3, 0.02)  # 3e6/4e6, 1.2e6/4e6, min(0.02, 1e5/4e6 = 0.025)
    assert b.lo == (0.0, 0.1, 0.0)
    assert b.feasible(np.array([0.68, 0.3, 0.02])) is True
    assert b.feasible(np.array([0.5, 0.3, 0.2])) is False  # math over its max weight
    assert b.feasible(np.array([0.75, 0.23, 0.02])) is True
    assert b.feasible(np.array([0.76, 0.22, 0.02])) is False  # prose past 3 epochs
    with pytest.raises(BudgetError) as err:
        b.check({"prose": 0.8, "code": 0.18, "math": 0.02})
    # 0.8 x 4,000,000 = 3,200,000 asked of 1,000,000 x 3 = 3,000,000
    assert "over by 200,000 tokens" in str(err.value) and "'prose'" in str(err.value)
    with pytest.raises(BudgetError, match=r"'code': weight 0\.05 is below its min weight 0\.1 by 0\.05"):
        b.check({"prose": 0.7, "code": 0.05, "math": 0.02})
    # a larger target: every epoch cap tightens in proportion
    assert resolve_bounds(ws, target_tokens=3_000_000).hi == (1.0, 0.4, 0.02)


def test_infeasible_target_names_the_limiting_dataset(tmp_path: Path) -> None:
    budget = Budget.from_dict({"target_tokens": 4_000_000,
                               "datasets": {"prose": {"max_epochs": 2}, "code": {"max_epochs": 4},
                                            "math": {"max_epochs": 1}}})
    ws = _ws(tmp_path, {"prose": 1_000_000, "code": 300_000, "math": 100_000}, budget)
    # caps: 2,000,000 + 1,200,000 + 100,000 = 3,300,000 < 4,000,000: short by 700,000; prose is the largest
    with pytest.raises(BudgetError) as err:
        resolve_bounds(ws)
    msg = str(err.value)
    assert "\n" not in msg
    assert "short by 700,000 tokens" in msg and "'prose'" in msg and "allow prose 2.7 epochs" in msg
    assert "3,300,000" in msg
    b = resolve_bounds(ws, target_tokens=3_300_000)  # exactly at the caps: one feasible mixture
    assert b.hi == pytest.approx((2 / 3.3, 1.2 / 3.3, 0.1 / 3.3), abs=1e-15)
    assert b.feasible(np.array(b.hi), tol=1e-12)


def test_min_weights_too_large_and_min_above_cap(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dict.fromkeys(NAMES, 1_000_000), Budget.from_dict(
        {"datasets": {"prose": {"min_weight": 0.6}, "code": {"min_weight": 0.5}}}))
    with pytest.raises(BudgetError, match=r"min weights sum to 1\.1, above 1 by 0\.1"):
        resolve_bounds(ws)
    ws = _ws(tmp_path, dict.fromkeys(NAMES, 1_000_000), Budget.from_dict(
        {"target_tokens": 10_000_000, "max_epochs": 1, "datasets": {"math": {"min_weight": 0.2}}}))
    with pytest.raises(BudgetError) as err:
        resolve_bounds(ws)
    # math: 0.2 x 10,000,000 = 2,000,000 needed, 1,000,000 x 1 held
    assert "'math'" in str(err.value) and "short by 1,000,000 tokens" in str(err.value)


def test_manifest_round_trip_and_bad_values(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dict.fromkeys(NAMES, 1000), Budget())
    ws.budget = with_changes(ws.budget, target_tokens=2000, epochs={"code": 3}, min_weight={"prose": 0.1},
                             max_weight={"math": 0.4}, available={"math": 900})
    ws.save()
    data = yaml.safe_load((tmp_path / "demix.yaml").read_text())
    assert data["budget"] == {"target_tokens": 2000,
                              "datasets": {"code": {"max_epochs": 3}, "prose": {"min_weight": 0.1},
                                           "math": {"max_weight": 0.4, "available_tokens": 900}}}
    again = load_workspace(tmp_path)
    assert again.budget == ws.budget
    assert resolve_bounds(again).hi == (1.0, 1.0, 0.4)  # only code has an epoch cap: 3 x 1000 / 2000 > 1
    for bad, match in [({"target_tokens": -5}, "target_tokens"),
                       ({"datasets": {"code": {"max_epochs": 0}}}, "max_epochs"),
                       ({"datasets": {"code": {"min_weight": 0.5, "max_weight": 0.4}}}, "above max_weight"),
                       ({"datasets": {"code": {"epochs": 2}}}, "unknown key 'epochs'"), ({"target": 1}, "unknown key")]:
        data["budget"] = bad
        (tmp_path / "demix.yaml").write_text(yaml.safe_dump(data))
        with pytest.raises(WorkspaceError, match=match):
            load_workspace(tmp_path)


def test_projection_is_feasible_nearest_and_identity_on_feasible() -> None:
    b = Bounds(NAMES, (0.1, 0.0, 0.05), (0.5, 0.6, 0.3))
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(3), size=2000)
    p = b.project(x)
    assert np.all(b.feasible(p))
    assert np.abs(p.sum(axis=1) - 1).max() <= 1e-12
    inside = b.feasible(x)
    assert inside.any() and np.array_equal(p[inside], x[inside])
    # nearest: no random feasible point is closer than the projection (checked against 5,000 feasible points)
    y = rng.dirichlet(np.ones(3), size=20000)
    y = y[b.feasible(y)][:5000]
    for row, proj in zip(x[:50], p[:50]):
        assert np.linalg.norm(row - proj) <= np.linalg.norm(y - row, axis=1).min() + 1e-12


def test_trial_params_round_trip_through_the_bounds() -> None:
    b = Bounds(NAMES, (0.1, 0.0, 0.05), (0.5, 0.6, 0.3))
    mix = Mixture.from_weights(NAMES, [0.4, 0.35, 0.25])
    back = mixture_from_trial_params(NAMES, params_from_mixture(mix), b)
    assert np.allclose(back.weights, mix.weights, atol=1e-12)
    wild = mixture_from_trial_params(NAMES, {"u_prose": 0.001, "u_code": 0.99, "u_math": 0.99}, b)
    assert b.feasible(np.array(wild.weights))


def test_slider_moves_and_locks_stay_feasible() -> None:
    names = ("a", "b", "c", "d", "e")
    b = Bounds(names, (0.05, 0.0, 0.1, 0.0, 0.0), (0.4, 0.3, 0.5, 0.25, 0.6))
    rng = np.random.default_rng(1)
    w = dict(zip(names, b.project(np.full(5, 0.2))))
    for _ in range(3000):
        locked = [n for n in names if rng.random() < 0.3]
        moved = str(rng.choice(names))
        w[moved] = float(rng.uniform(-0.2, 1.2))  # the user drags anywhere, even past the ends
        try:
            w = slider_move(w, moved, locked, b)
        except BudgetError:
            continue  # the locks leave no room: the weights stay as they were
        values = np.array([w[n] for n in names])
        assert abs(values.sum() - 1) <= 1e-9
        assert np.all(values >= b.lo_array() - 1e-9) and np.all(values <= b.hi_array() + 1e-9)
        ranges = slider_ranges(w, locked, b)
        for n in names:
            lo, hi = ranges[n]
            assert lo - 1e-9 <= w[n] <= hi + 1e-9


def test_slider_move_is_proportional_when_no_bound_binds_and_clamps_to_the_drawn_range() -> None:
    b = Bounds(("a", "b", "c"), (0.0, 0.0, 0.0), (0.7, 1.0, 1.0))
    w = slider_move({"a": 0.4, "b": 0.4, "c": 0.2}, "a", [], b)
    assert w == pytest.approx({"a": 0.4, "b": 0.4, "c": 0.2}, abs=1e-15)
    w = slider_move({"a": 0.6, "b": 0.3, "c": 0.1}, "a", [], b)  # b and c absorb 3:1
    assert w["b"] == pytest.approx(0.3, abs=1e-12) and w["c"] == pytest.approx(0.1, abs=1e-12)
    w = slider_move({"a": 0.95, "b": 0.3, "c": 0.1}, "a", [], b)  # past a's cap 0.7: clamped, rest 3:1
    assert w == pytest.approx({"a": 0.7, "b": 0.225, "c": 0.075}, abs=1e-12)
    ranges = slider_ranges({"a": 0.2, "b": 0.5, "c": 0.3}, ["b"], b)
    assert {n: pytest.approx(r, abs=1e-15) for n, r in ranges.items()} == {"a": (0.0, 0.5), "b": (0.5, 0.5),
                                                                          "c": (0.0, 0.5)}
    with pytest.raises(BudgetError, match="unknown component 'z'"):
        slider_move({"a": 1.0, "b": 0.0, "c": 0.0}, "z", [], b)


def test_max_weights_below_one_and_unknown_tokens(tmp_path: Path) -> None:
    ws = _ws(tmp_path, dict.fromkeys(NAMES, 1000), Budget.from_dict(
        {"datasets": {n: {"max_weight": 0.3} for n in NAMES}}))
    with pytest.raises(BudgetError, match=r"max weights sum to 0\.9, below 1 by 0\.1"):
        resolve_bounds(ws)
    ws = _ws(tmp_path, {"prose": 0, "code": 1000, "math": 1000}, Budget.from_dict({"target_tokens": 1000,
                                                                                  "max_epochs": 2}))
    with pytest.raises(BudgetError, match="'prose' has no token count.*--measure"):
        resolve_bounds(ws)
    assert Budget().empty and not Budget.from_dict({"max_epochs": 2}).empty
    assert resolve_bounds(_ws(tmp_path, dict.fromkeys(NAMES, 1000), Budget())).trivial


def test_default_epoch_cap_and_none(tmp_path: Path) -> None:
    tokens = {"prose": 1_000_000, "code": 300_000, "math": 100_000}
    ws = _ws(tmp_path, tokens, Budget.from_dict({"target_tokens": 4_000_000}))  # no cap stated: 4 epochs each
    assert DEFAULT_MAX_EPOCHS == 4.0
    assert resolve_bounds(ws).hi == (1.0, 0.3, 0.1)  # 4e6 / 4e6, 1.2e6 / 4e6, 4e5 / 4e6
    assert resolve_bounds(ws).max_epochs == (4.0, 4.0, 4.0) and ws.budget.epochs_default("math")
    ws.budget = with_changes(ws.budget, max_epochs=math.inf, epochs={"code": 2})  # --max-epochs none, code=2
    assert ws.budget.to_dict() == {"target_tokens": 4_000_000, "max_epochs": "none",
                                   "datasets": {"code": {"max_epochs": 2}}}
    assert resolve_bounds(ws).hi == (1.0, 0.15, 1.0) and resolve_bounds(ws).max_epochs == (None, 2.0, None)
    assert not ws.budget.epochs_default("math")
    ws.save()
    assert load_workspace(tmp_path).budget == ws.budget
    assert Budget.from_dict({"datasets": {"math": {"max_epochs": "none"}}}).epochs_of("math") is None
    # a dataset without a token count: the default cap cannot be applied, so its bound is left free (a stated cap
    # there is an error: test_max_weights_below_one_and_unknown_tokens)
    free = _ws(tmp_path, {"prose": 0, "code": 1000, "math": 1000}, Budget.from_dict({"target_tokens": 1000}))
    assert resolve_bounds(free).hi == (1.0, 1.0, 1.0)


def test_check_names_the_dataset_that_limits_this_mixture(tmp_path: Path) -> None:
    tokens = {"prose": 1_000_000, "code": 300_000, "math": 100_000}  # default caps: 4 epochs each
    ws = _ws(tmp_path, tokens, Budget.from_dict({"target_tokens": 5_000_000}))
    mixture = {"prose": 0.5, "code": 0.3, "math": 0.2}
    # needs / caps at 5e6: prose 2.5 / 4, code 5 / 4, math 10 / 4: math first although code comes before it
    with pytest.raises(BudgetError) as err:
        resolve_bounds(ws).check(mixture)
    assert str(err.value) == (
        "dataset 'math' would be repeated 10 times (cap 4 epochs): this mixture asks 0.2 x 5,000,000 = 1,000,000 "
        "tokens of its 100,000, over by 600,000 tokens (past their caps too: code); lower math's weight to 0.08 or "
        "the target tokens to 2,000,000")
    resolve_bounds(ws, target_tokens=2_000_000).check(mixture)  # that target fits the whole mixture
    # at 1e7 the caps allow 4e6 + 1.2e6 + 4e5 = 5.6e6 tokens: no mixture fits, the one fix is the target
    with pytest.raises(BudgetError) as err:
        resolve_bounds(ws, target_tokens=10_000_000, check=False).check({"prose": 0.3, "code": 0.1, "math": 0.6})
    assert str(err.value) == (
        "dataset 'math' would be repeated 60 times (cap 4 epochs): this mixture asks 0.6 x 10,000,000 = 6,000,000 "
        "tokens of its 100,000, over by 5,600,000 tokens; no mixture fits 10,000,000 target tokens at these caps "
        "(they allow 5,600,000), so lower the target tokens to 666,666 for this mixture, or allow math 60 epochs")
    with pytest.raises(BudgetError, match=r"the largest dataset, 'prose' \(1,000,000 tokens x 4 epochs\).*allow prose "
                                          r"8\.4 epochs"):  # the budget alone (no mixture) names the largest
        resolve_bounds(ws, target_tokens=10_000_000)


def test_readable_numbers() -> None:
    assert [readable(x) for x in (396_123_456.7, 5501.3, 2.7, 0.00029, 2.0, 0.0, 12.5, 99.96)] == [
        "396,000,000", "5,500", "2.7", "0.00029", "2", "0", "12.5", "100"]
    assert [readable(x, up=True) for x in (5501.3, 2.0, 2.001, 0.29084)] == ["5,510", "2", "2.01", "0.291"]


def test_max_target_tokens_of_a_mixture_and_the_downloads_first_target(tmp_path: Path) -> None:
    from app.mixture_download import default_target
    from demix_core.workspace.feasible import max_target_tokens

    tokens = {"prose": 1_000_000, "code": 300_000, "math": 100_000}
    ws = _ws(tmp_path, tokens, Budget.from_dict({"datasets": {"code": {"max_epochs": 2}}}))  # others: 4 epochs
    # prose 4e6 / 0.5 = 8e6, code 6e5 / 0.3 = 2e6, math 4e5 / 0.2 = 2e6: the smallest, 2,000,000
    assert max_target_tokens(ws, {"prose": 0.5, "code": 0.3, "math": 0.2}) == 2_000_000
    assert max_target_tokens(ws, {"prose": 0.9, "math": 0.1}) == 4_000_000  # 4e6 / 0.9 = 4.44e6; 4e5 / 0.1
    ws.budget = with_changes(ws.budget, max_epochs=math.inf, epochs={"code": 2})
    assert max_target_tokens(ws, {"prose": 0.9, "math": 0.1}) is None  # unlimited repeats: nothing limits it
    assert max_target_tokens(ws, {"prose": 0.5, "code": 0.5}) == 1_200_000  # code alone is capped
    assert default_target(None, None) == 1_000_000_000 and default_target(None, 5_000_000_000) == 1_000_000_000
    assert default_target(None, 1_454_200) == 1_450_000 and default_target(None, 987) == 987
    assert default_target(7_000, 1_454_200) == 7_000  # a budget's target is kept (the export then says why not)
