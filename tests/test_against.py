"""``demix recommend --against``: the screen's arithmetic on known predictions, the recommendation on a synthetic
predictor whose answer is known, the targets' parsing, and the command end to end on a tiny workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import loop_study

from demix_core.cli import main
from demix_core.errors import ConfigError
from demix_core.mixing.mixture import Mixture
from demix_core.search.against import Against, NothingBeats, Target, natural_mixture, parse_target, screen, z_of
from demix_core.search.predictor import recommend

NAMES = ["a", "b", "c"]
UNIFORM = Target("uniform", Mixture.from_weights(NAMES, [1, 1, 1]))


def test_the_screen_keeps_candidates_whose_lower_bound_clears_the_floor_on_every_domain() -> None:
    predicted = {"x": np.array([0.30, 0.50, 0.10, 0.45]), "y": np.array([0.40, 0.12, 0.60, 0.25])}
    target = {"x": 0.20, "y": 0.10}
    z = z_of(0.8)
    s = screen(predicted, target, ["x", "y"], {"x": 0.05, "y": 0.02}, {"x": 0.01, "y": 0.03}, UNIFORM,
               confidence=0.8)
    # margin = prediction - target - z * error - floor
    assert s.margin["x"] == pytest.approx(predicted["x"] - 0.20 - z * 0.05 - 0.01)
    assert s.margin["y"] == pytest.approx(predicted["y"] - 0.10 - z * 0.02 - 0.03)
    # x: 0.30 - 0.2 - 0.0421 - 0.01 = +0.048 ok; 0.50 ok; 0.10 no; 0.45 ok
    # y: 0.40 ok; 0.12 - 0.1 - 0.0168 - 0.03 < 0 no; 0.60 ok; 0.25 ok
    assert s.qualified.tolist() == [True, False, False, True]
    assert s.count == 2 and s.blocking() is None
    assert s.pass_rates() == {"x": 0.75, "y": 0.75}
    assert "2 of 4 candidates are expected to beat uniform" in s.summary()
    at = s.at({"x": 0.30, "y": 0.40})
    assert at["x"] == pytest.approx({"gain": 0.10, "lower": 0.10 - z * 0.05, "floor": 0.01})


def test_with_nothing_qualifying_the_screen_names_the_domain_that_blocks() -> None:
    predicted = {"x": np.array([0.30, 0.50, 0.45]), "y": np.array([0.11, 0.12, 0.13])}
    s = screen(predicted, {"x": 0.20, "y": 0.10}, ["x", "y"], {"x": 0.0, "y": 0.0}, {"x": 0.01, "y": 0.05},
               UNIFORM, confidence=0.5)
    assert s.count == 0 and s.blocking() == "y"
    text = s.summary()
    assert text.startswith("no candidate of 3 is expected to beat uniform (a=0.33 b=0.33 c=0.33)")
    assert "y blocks it" in text and "falls 0.02 short of the floor on y" in text and "x 100%" in text
    assert s.to_json()["blocking"] == "y" and s.to_json()["qualified"] == 0


def test_the_weighted_total_combines_error_and_floor_as_independent_terms() -> None:
    predicted = {"x": np.array([0.50, 0.22]), "y": np.array([0.05, 0.12])}
    s = screen(predicted, {"x": 0.20, "y": 0.10}, ["x", "y"], {"x": 0.03, "y": 0.04}, {"x": 0.01, "y": 0.02},
               UNIFORM, confidence=0.8, total={"x": 1.0, "y": 1.0})
    z = z_of(0.8)
    want = np.array([0.30 - 0.05, 0.02 + 0.02]) - z * 0.05 - np.sqrt(0.01 ** 2 + 0.02 ** 2)
    assert list(s.margin) == ["total"] and s.margin["total"] == pytest.approx(want)
    assert s.qualified.tolist() == [True, False]  # the first loses on y but wins the total


def test_some_domain_better_and_none_worse_beyond_the_floor() -> None:
    predicted = {"x": np.array([0.30, 0.30, 0.21, 0.19]), "y": np.array([0.09, 0.05, 0.11, 0.30])}
    z = z_of(0.8)
    s = screen(predicted, {"x": 0.20, "y": 0.10}, ["x", "y"], {"x": 0.01, "y": 0.01}, {"x": 0.02, "y": 0.02},
               UNIFORM, confidence=0.8, beat="some")
    # at the lower bound (minus z * 0.01 = 0.0084): gain the floor somewhere, lose nowhere beyond it
    # 1: x +0.10 better, y -0.01 - 0.0084 within -0.02 -> yes; 2: y -0.05 worse -> no; 3: nothing gains 0.02 -> no;
    # 4: y +0.2 -> yes
    assert s.qualified.tolist() == [True, False, False, True]
    assert s.margin["some domain"] == pytest.approx(np.array([0.08, 0.08, -0.01, 0.18]) - z * 0.01)
    assert s.margin["y"] == pytest.approx(np.array([0.01, -0.03, 0.03, 0.22]) - z * 0.01)  # the bound, not the mean
    assert "on some domain without losing any beyond it" in s.summary()
    none = screen({"x": np.array([0.21]), "y": np.array([0.105])}, {"x": 0.20, "y": 0.10}, ["x", "y"],
                  {"x": 0.0, "y": 0.0}, {"x": 0.02, "y": 0.02}, UNIFORM, confidence=0.5, beat="some")
    assert none.blocking() == "some domain"
    assert "no candidate gains the floor on any domain without losing one (the best falls 0.01 short" in none.summary()


def test_no_floor_means_the_predictors_error_alone_and_says_so() -> None:
    s = screen({"x": np.array([0.5])}, {"x": 0.2}, ["x"], {"x": 0.1}, None, UNIFORM, confidence=0.5)
    assert s.floor == {"x": 0.0} and not s.floor_known and s.count == 1
    assert "noise floor unknown" in s.summary()


def _linear_trials(n: int = 24, seed: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Trials whose scores are exactly linear in the weights: x = w_a, y = w_b (Ridge recovers them)."""
    x = np.vstack([np.random.default_rng(seed).dirichlet(np.ones(3), n - 2), [[0.45, 0.45, 0.10], [0.40, 0.40, 0.20]]])
    return x, {"x": x[:, 0].copy(), "y": x[:, 1].copy()}


def test_against_a_known_predictor_every_pick_beats_the_target_by_the_floor() -> None:
    x, y = _linear_trials()
    floor = {"x": 0.05, "y": 0.05}
    for pick in ("mean", "best", "trial"):
        rec = recommend(x, y, NAMES, ["x", "y"], top_k=32, samples=4000, pick=pick,
                        against=Against(UNIFORM, floor, confidence=0.5))
        w = rec.mixture.as_dict()
        # the truth: beat 1/3 by 0.05 on both a and b
        assert w["a"] > 1 / 3 + 0.05 - 1e-3 and w["b"] > 1 / 3 + 0.05 - 1e-3, (pick, w)
        assert rec.pick == pick and rec.against is not None and rec.against["pick_qualifies"]
        for nb in rec.neighbours:
            assert nb["x"] >= 1 / 3 + 0.05 - 1e-3 and nb["y"] >= 1 / 3 + 0.05 - 1e-3
    assert recommend(x, y, NAMES, ["x", "y"], samples=4000, pick="trial").samples == len(x)
    trial = recommend(x, y, NAMES, ["x", "y"], samples=4000, pick="trial", against=Against(UNIFORM, floor, 0.5))
    assert trial.mixture.as_dict() == pytest.approx({"a": 0.45, "b": 0.45, "c": 0.10})  # the best qualifying trial


def test_against_a_known_predictor_an_impossible_floor_names_its_domain() -> None:
    x, y = _linear_trials()
    with pytest.raises(NothingBeats) as info:  # b cannot gain 0.7 over 1/3 while a gains anything
        recommend(x, y, NAMES, ["x", "y"], samples=4000, against=Against(UNIFORM, {"x": 0.01, "y": 0.7},
                                                                         confidence=0.5))
    assert info.value.screen.blocking() == "y" and "y blocks it" in str(info.value)


def test_a_measured_target_replaces_the_prediction() -> None:
    x, y = _linear_trials()
    rec = recommend(x, y, NAMES, ["x", "y"], samples=4000,
                    against=Against(UNIFORM, {"x": 0.05, "y": 0.05}, confidence=0.5, measured={"x": 0.30, "y": 0.30}))
    assert rec.against is not None and rec.against["target_measured"] is True
    assert rec.against["target_predicted"] == {"x": 0.30, "y": 0.30}
    w = rec.mixture.as_dict()
    assert w["a"] > 0.35 - 1e-3 and w["b"] > 0.35 - 1e-3  # beats the measured 0.30 by the floor on both


def test_targets_parse_natural_uniform_and_weights_and_refuse_anything_else() -> None:
    assert natural_mixture(["a", "b"], [300, 100]) == {"a": 0.75, "b": 0.25}
    assert natural_mixture(["a", "b"], [0, 0]) == {"a": 0.5, "b": 0.5}
    t = parse_target("Natural", NAMES, [2, 1, 1])
    assert t.label == "natural" and t.mixture.as_dict() == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert parse_target("uniform", NAMES, [2, 1, 1]).mixture.as_dict() == pytest.approx({n: 1 / 3 for n in NAMES})
    cur = parse_target("a=0.6,c=0.4", NAMES, [1, 1, 1])
    assert cur.label == "current" and cur.mixture.as_dict() == {"a": 0.6, "b": 0.0, "c": 0.4}
    with pytest.raises(ConfigError, match="is not natural, uniform or name=weight"):
        parse_target("best", NAMES, [1, 1, 1])
    with pytest.raises(ConfigError, match="--against 'a=0.6,zeta=0.4'"):
        parse_target("a=0.6,zeta=0.4", NAMES, [1, 1, 1])
    for bad in (0.4, 1.0):
        with pytest.raises(ConfigError, match=f"confidence {bad} must lie in"):
            z_of(bad)


def test_recommend_against_natural_on_a_workspace(tiny_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loop_study(tiny_workspace, trials=10)
    capsys.readouterr()
    args = ["recommend", "--workspace", str(tiny_workspace), "--study", "loop", "--samples", "500", "--top-k", "8"]
    code = main([*args, "--against", "natural", "--confidence", "0.5", "--json"])
    out = json.loads(capsys.readouterr().out)
    judged = out["against"]
    assert judged["target"] == "natural" and judged["floor_known"] is False
    # natural was measured first, as a trial of the study, and the screen compares with its measured scores
    assert judged["target_measured"] is True and "predicted, not measured" not in judged["summary"]
    from demix_core.search.recommend import measured_scores
    from demix_core.search.study import load_study
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(tiny_workspace)
    study = load_study(ws, "loop")
    natural = parse_target("natural", ws.component_names, [c.tokens for c in ws.components]).mixture
    measured = measured_scores(study, natural)
    assert measured is not None and judged["target_predicted"] == pytest.approx(measured)
    trials = len(study.trials)
    main([*args, "--against", "natural", "--confidence", "0.5", "--json"])  # measured once: no second trial
    capsys.readouterr()
    assert len(load_study(ws, "loop").trials) == trials
    assert "no repeated trained mixture in the quick validation" in judged["floor_source"]
    if code == 0:  # a mixture, every domain's predicted gain at or above its lower bound
        assert out["mixture"] is not None and judged["qualified"] > 0
        assert set(judged["at"]) == set(judged["error"])
    else:
        assert code == 1 and out["mixture"] is None and judged["blocking"] in judged["error"]
    assert main([*args, "--against", "nonsense"]) == 2
    assert "--against 'nonsense' is not natural, uniform" in capsys.readouterr().err
    assert main([*args, "--confidence", "0.9"]) == 2
    assert "give --against natural" in capsys.readouterr().err
