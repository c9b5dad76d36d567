"""The noise floor of validation (issue 26): pooled seed sd over repeated mixtures, the per-domain calls of the loop
("within noise", "better", "worse", "noise unknown"), their JSON and text, and `recommend --train --repeats N` end to
end on a tiny workspace."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_TRAINING, loop_study

from demix_core.cli import main
from demix_core.validation.calls import difference_interval, domain_call, domain_calls
from demix_core.validation.loop import RECOMMENDED, loop_report, workspace_loop
from demix_core.validation.noise import floor_json, floor_line, measure_command, noise_call, reference_noise
from demix_core.validation.report import ValidationReport, method_report
from demix_core.workspace.manifest import load_workspace
from demix_core.workspace.records import LoopPlan, read_plan, write_plan

TINY = TINY_TRAINING
# Mixture (0.5, 0.5) three times (one weight off by 4e-7: the same mixture to 1e-6), (1, 0) twice, (0, 1) once.
MIXTURES = [{"a": 0.5, "b": 0.5}, {"a": 0.5000004, "b": 0.4999996}, {"a": 0.5, "b": 0.5}, {"a": 1.0}, {"a": 1.0},
            {"b": 1.0}]
SCORES = {"general": [1.0, 1.2, 1.4, 2.0, 2.2, 5.0], "code": [0.0, 0.0, 0.3, 1.0, 1.0, -7.0]}


def test_the_floor_is_the_pooled_within_mixture_sd() -> None:
    floor = reference_noise(["a", "b"], MIXTURES, SCORES)
    # general: (1.0, 1.2, 1.4) around 1.2 -> 0.08, (2.0, 2.2) around 2.1 -> 0.02; 3 degrees of freedom
    # code: (0, 0, 0.3) around 0.1 -> 0.06, (1, 1) -> 0; the single (0, 1) run adds nothing
    assert floor.spread == pytest.approx({"general": math.sqrt(0.10 / 3), "code": math.sqrt(0.06 / 3)})
    assert list(floor.spread) == ["general", "code"] and (floor.mixtures, floor.runs) == (2, 5)
    assert floor_json(floor, "cmd") == ({"domains": floor.spread, "mixtures": 2, "runs": 5}, None)
    assert floor_line(floor, "cmd") == ("noise floor (seed sd, pooled over 2 repeated mixture(s), 5 models): "
                                        "general 0.183, code 0.141")
    none = reference_noise(["a", "b"], MIXTURES[2:4] + MIXTURES[5:], {d: v[2:4] + v[5:] for d, v in SCORES.items()})
    assert none.spread == {} and none.mixtures == 0
    command = measure_command(Path("/w"), ["a", "b", "c"])
    assert command == "demix workspace train-reference /w --mixture a=0.333333,b=0.333333,c=0.333333 --seed 1"
    reason = f"no mixture was trained twice; measure it with `{command}`"
    assert floor_json(none, command) == (None, reason)
    assert floor_line(none, command) == f"noise unknown: {reason}"


def test_calls_within_noise_better_worse_unknown() -> None:
    assert noise_call(0.001, 0.002) == "within noise"
    assert noise_call(-0.002, 0.002) == "within noise"  # on the floor is within it
    assert noise_call(0.0021, 0.002) == "better"
    assert noise_call(-0.0021, 0.002) == "worse"
    assert noise_call(0.5, None) == "noise unknown"
    got = domain_calls({"general": -3.50, "code": -2.90, "math": -3.60}, {"general": -3.501, "code": -2.95,
                                                                           "math": -3.55}, {"general": 0.002,
                                                                                            "code": 0.007})
    assert {d: c["call"] for d, c in got.items()} == {"general": "within noise", "code": "better",
                                                      "math": "noise unknown"}
    assert got["code"]["difference"] == pytest.approx(0.05) and got["code"]["floor"] == 0.007
    assert got["math"]["floor"] is None and got["math"]["difference"] == pytest.approx(-0.05)


def test_the_loop_carries_the_calls_in_json_and_text() -> None:
    refs = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    models = {RECOMMENDED: ("m-rec", {"a": 1.0}, np.array([3.5, 2.0])),
              "uniform": ("m-uni", {"a": 0.5}, np.array([3.4, 2.5]))}
    report = loop_report(["r1", "r2", "r3", "r4"], refs, models, ["x", "y"], n=50, floor={"x": 0.2, "y": 0.1})
    uni = report.entry("uniform")
    assert uni is not None and report.entry(RECOMMENDED).calls == {}  # type: ignore[union-attr]
    assert {d: c["call"] for d, c in uni.calls.items()} == {"x": "within noise", "y": "worse"}
    # one seed each, normal quantile: half-width 1.96 * floor * sqrt(2)
    half = 1.959964 * 0.1 * math.sqrt(2)
    assert uni.to_json()["calls"]["y"] == {"difference": pytest.approx(-0.5), "floor": 0.1, "call": "worse",
                                           "low": pytest.approx(-0.5 - half), "high": pytest.approx(-0.5 + half)}
    assert ("  recommended minus uniform per domain: x +0.100 [-0.454, +0.654] within noise (floor 0.2), "
            "y -0.500 [-0.777, -0.223] worse (floor 0.1)") in report.lines()
    bare = loop_report(["r1", "r2", "r3", "r4"], refs, models, ["x", "y"], n=50).entry("uniform")
    assert bare is not None and {c["call"] for c in bare.calls.values()} == {"noise unknown"}


def test_a_role_trained_at_several_seeds_scores_the_mean_of_its_repeats(tmp_path: Path) -> None:
    plan = LoopPlan("s", None, "merge", {RECOMMENDED: {"a": 1.0}, "uniform": {"a": 0.5, "b": 0.5}},
                    {RECOMMENDED: "rec", "uniform": "uni"}, repeats=2)
    ws = SimpleNamespace(root=tmp_path)
    write_plan(ws, plan)
    assert json.loads((tmp_path / "validation" / "loop.json").read_text())["repeats"] == 2
    again = read_plan(ws)
    assert again is not None and again.repeats == 2 and again.model_names("uniform") == ["uni", "uni-s1"]
    assert again.all_names() == {"rec", "rec-s1", "uni", "uni-s1"}
    scores = {"r1": {"x": 1.0}, "r2": {"x": 2.0}, "r3": {"x": 3.0}, "rec": {"x": 2.0}, "rec-s1": {"x": 3.0},
              "uni": {"x": 1.5}}
    loop = workspace_loop(ws, ["r1", "r2", "r3", "rec", "rec-s1", "uni"], scores, ["x"], floor={"x": 0.25})
    assert loop is not None and loop.references == ["r1", "r2", "r3"]  # repeats of the loop's models are not references
    rec, uni = loop.entry(RECOMMENDED), loop.entry("uniform")
    assert rec is not None and uni is not None
    assert rec.domains == {"x": 2.5} and uni.domains == {"x": 1.5}  # the mean of the trained repeats
    # rec over 2 seeds, uniform over 1: half-width 1.96 * 0.25 * sqrt(1/2 + 1) = 0.600
    assert uni.calls["x"] == {"difference": 1.0, "floor": 0.25, "call": "better",
                              "low": pytest.approx(0.39988, abs=1e-4), "high": pytest.approx(1.60012, abs=1e-4)}
    assert rec.repeats == 2 and uni.repeats == 1
    write_plan(ws, LoopPlan("s", None, "merge", {}, {}))
    assert "repeats" not in json.loads((tmp_path / "validation" / "loop.json").read_text())  # one seed: as before


def test_the_validation_report_carries_the_floor() -> None:
    ref = {"x": np.array([1.0, 2.0, 3.0, 4.0])}
    methods = [method_report("merged", {"x": np.array([1.0, 2.0, 4.0, 3.0])}, ref)]
    mixtures = [{"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}, {"a": 1.0}, {"b": 1.0}]

    def report(noise: object, command: str) -> ValidationReport:
        return ValidationReport(["r1", "r2", "r3", "r4"], mixtures, ["x"], {"x": [1.0, 2.0, 3.0, 4.0]}, methods,
                                noise=noise, noise_command=command)

    floor = reference_noise(["a", "b"], mixtures, {"x": [1.0, 2.0, 3.0, 4.0]})
    data = report(floor, "cmd").to_json()
    assert data["noise_floor"] == {"domains": {"x": pytest.approx(math.sqrt(0.5))}, "mixtures": 1, "runs": 2}
    assert data["noise_reason"] is None
    assert report(floor, "cmd").lines()[1] == ("noise floor (seed sd, pooled over 1 repeated mixture(s), 2 models): "
                                               "x 0.707")
    empty = report(reference_noise(["a", "b"], mixtures[1:], {"x": [2.0, 3.0, 4.0]}), "cmd")
    assert empty.to_json()["noise_floor"] is None
    assert empty.to_json()["noise_reason"] == "no mixture was trained twice; measure it with `cmd`"
    assert empty.lines()[1] == "noise unknown: no mixture was trained twice; measure it with `cmd`"


def test_repeats_flag_errors_are_one_line(tiny_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["recommend", "--workspace", str(tiny_workspace), "--study", "x", "--train", "--repeats", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: argument --repeats: 0 is not allowed: give 1 or more")
    assert main(["recommend", "--workspace", str(tiny_workspace), "--study", "x", "--repeats", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --train too" in err[0]


def test_recommend_train_repeats_then_validate_measures_the_floor(tiny_workspace: Path, one_torch_thread,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tiny_workspace)
    loop_study(tiny_workspace, trials=8)
    capsys.readouterr()
    assert main(["recommend", "--workspace", root, "--study", "loop", "--samples", "500", "--top-k", "8",
                 "--train", "--repeats", "2"]) == 0
    assert "(seed 1 of 2)" in capsys.readouterr().out
    plan = read_plan(load_workspace(tiny_workspace))
    assert plan is not None and plan.repeats == 2
    refs = {r.name: r for r in load_workspace(tiny_workspace).references}
    for role, name in plan.names.items():
        assert refs[name].seed is None and refs[f"{name}-s1"].seed == 1, role
        assert refs[f"{name}-s1"].mixture == pytest.approx(plan.mixtures[role])
    assert main(["validate", "--workspace", root, "--device", "cpu", "--proxy", "ensemble", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["references"]) == ["ref-alpha", "ref-beta", "seed-ref"]
    floor = data["noise_floor"]
    assert floor is not None and data["noise_reason"] is None and set(floor["domains"]) == set(data["domains"])
    assert floor["runs"] == 2 * floor["mixtures"] and floor["mixtures"] == len(set(plan.names.values()))
    for e in data["loop"]["entries"][1:]:
        assert set(e["calls"]) == set(data["domains"])
        for d, c in e["calls"].items():
            assert c["floor"] == pytest.approx(floor["domains"][d])
            ci = difference_interval(c["difference"], c["floor"], 2, 2, floor["runs"] - floor["mixtures"])
            assert ci is not None and (c["low"], c["high"]) == pytest.approx(ci)
            assert c["call"] == domain_call(c["difference"], c["floor"], ci)
            assert c["call"] != "better" or (c["difference"] > c["floor"] and c["low"] > 0)
