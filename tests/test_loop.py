"""Close the loop (issue 15): train a mixture as a reference, the baselines' mixtures, rank / regret / paired verdict
on hand-made scores, and recommend --train -> validate end to end on a tiny workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAINING, loop_study

from demix_core.cli import main
from demix_core.train.trainer import read_training
from demix_core.validation.explain import explanation
from demix_core.validation.loop import RECOMMENDED, baseline_mixtures, loop_report
from demix_core.validation.stats import outcome
from demix_core.workspace.manifest import ReferenceEntry, load_workspace
from demix_core.workspace.records import read_plan

TINY = TINY_TRAINING


def test_train_reference_adds_the_asked_mixture(tiny_workspace: Path, one_torch_thread,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    args = ["workspace", "train-reference", str(tiny_workspace), "--mixture", "alpha=0.2,beta=0.3,gamma=0.5",
            "--name", "t1", *TINY]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[3/3] loss" in out and "reference t1 added" in out
    ws = load_workspace(tiny_workspace)
    [entry] = [r for r in ws.references if r.name == "t1"]
    assert entry.kind == "reference" and entry.path == "references/t1"
    assert entry.mixture == pytest.approx({"alpha": 0.2, "beta": 0.3, "gamma": 0.5})
    record = read_training(tiny_workspace / "references" / "t1")
    assert record["mixture"] == pytest.approx({"alpha": 0.2, "beta": 0.3, "gamma": 0.5}) and record["steps"] == 3
    assert record["probabilities"]["general"] == pytest.approx(0.5)  # the general share mixed in, as references do
    # again: nothing retrained, not listed twice; the same name for another mixture is one error line
    assert main(args) == 0 and "already trained" in capsys.readouterr().out
    assert [r.name for r in load_workspace(tiny_workspace).references] == ["t1"]
    assert main([*args[:3], "--mixture", "alpha=1", "--name", "t1", *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists with another mixture" in err[0]
    # a second reference takes its settings from the first's training.json (no --steps needed)
    assert main(["workspace", "train-reference", str(tiny_workspace), "--mixture", "beta=1"]) == 0
    second = [r for r in load_workspace(tiny_workspace).references if r.name != "t1"]
    assert len(second) == 1 and second[0].name.startswith("mix-")
    assert read_training(tiny_workspace / second[0].path)["steps"] == 3


def test_train_reference_needs_datasets_and_a_recipe(tiny_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workspace", "train-reference", str(tiny_workspace), "--mixture", "alpha=1"]) == 2
    assert "records its training settings" in capsys.readouterr().err
    ws = load_workspace(tiny_workspace)
    ws.datasets = []
    ws.save()
    assert main(["workspace", "train-reference", str(tiny_workspace), "--mixture", "alpha=1", *TINY]) == 2
    assert "has no datasets" in capsys.readouterr().err


def test_rank_and_regret_exact_on_hand_made_scores() -> None:
    refs = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    models = {RECOMMENDED: ("m-rec", {"a": 1.0}, np.array([3.5, 3.5])),
              "uniform": ("m-uni", {"a": 0.5}, np.array([1.5, 1.5]))}
    report = loop_report(["r1", "r2", "r3", "r4"], refs, models, ["x", "y"], n=200)
    rec, uni = report.entry(RECOMMENDED), report.entry("uniform")
    assert rec is not None and uni is not None
    # population refs + model, per domain values 1 2 3 4 3.5: the model's percentile rank is (4 - 1) / 4
    assert rec.composite == pytest.approx(0.75) and rec.rank == 2 and rec.regret.value == pytest.approx(0.25)
    assert rec.domain_ranks == {"x": 2, "y": 2}
    assert uni.composite == pytest.approx(0.25) and uni.rank == 4 and uni.regret.value == pytest.approx(0.75)
    assert rec.regret.low <= rec.regret.value <= rec.regret.high
    assert uni.versus is not None and uni.versus.value == pytest.approx(0.5)
    best = loop_report(["r1", "r2"], refs[:2], {RECOMMENDED: ("m", {}, np.array([9.0, 9.0]))}, ["x", "y"])
    top = best.entry(RECOMMENDED)
    assert top is not None and top.rank == 1 and top.regret.value == pytest.approx(-0.5)  # beats every reference
    text = "\n".join(report.lines())
    assert "ranks 2 of 5" in text and "regret +0.25" in text


def test_verdict_beat_not_beat_inconclusive_from_the_paired_interval() -> None:
    refs = np.column_stack([np.arange(1.0, 13.0), np.arange(1.0, 13.0)])  # 12 references, 1..12 on both domains
    names = [f"r{i}" for i in range(12)]

    def versus(rec: float, base: float) -> str:
        report = loop_report(names, refs, {RECOMMENDED: ("a", {}, np.array([rec, rec])),
                                           "uniform": ("b", {}, np.array([base, base]))}, ["x", "y"])
        entry = report.entry("uniform")
        assert entry is not None and entry.versus is not None
        return outcome(entry.versus)

    assert versus(9.5, 2.5) == "beat"  # seven references between them
    assert versus(2.5, 9.5) == "not beat"
    assert versus(9.5, 9.4) == "inconclusive"  # no reference separates them: the difference is 0 in every resample
    report = loop_report(names, refs, {RECOMMENDED: ("a", {}, np.array([6.5, 6.5])),
                                       "uniform": ("b", {}, np.array([1.5, 1.5])),
                                       "natural": ("c", {}, np.array([12.5, 12.5]))}, ["x", "y"],
                         missing={"null pick": "loop-null-pick-x"})
    verdict = report.verdict()
    assert "beats uniform" in verdict and "does NOT beat natural" in verdict and "not trained yet: null pick" in verdict


def test_baseline_mixtures(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)  # tokens 1000, 2000, 3000; domains general, code, math
    trials = [{"alpha": 0.8, "beta": 0.1, "gamma": 0.1}, {"alpha": 0.3, "beta": 0.4, "gamma": 0.3},
              {"alpha": 0.1, "beta": 0.1, "gamma": 0.8}]
    values = np.array([[3.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 3.0, 3.0]])  # composites 1/3, 1/2, 2/3
    got = baseline_mixtures(ws, ["alpha", "beta", "gamma"], ["general", "code", "math"], trials, values)
    assert got["uniform"] == pytest.approx({"alpha": 1 / 3, "beta": 1 / 3, "gamma": 1 / 3})
    assert got["natural"] == pytest.approx({"alpha": 1 / 6, "beta": 2 / 6, "gamma": 3 / 6})
    assert got["best trial"] == trials[2]
    # the null scores each trial by its weight per domain: percentile ranks (1, .25, 0), (.5, 1, .5), (0, .25, 1)
    assert got["null pick"] == trials[1]


def test_recommend_train_then_validate_reports_the_loop(tiny_workspace: Path, tiny_family, one_torch_thread,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tiny_workspace)
    loop_study(tiny_workspace, trials=10)
    capsys.readouterr()
    assert main(["recommend", "--workspace", root, "--study", "loop", "--samples", "2000", "--top-k", "16",
                 "--train"]) == 0
    out = capsys.readouterr().out
    plan = read_plan(load_workspace(tiny_workspace))
    assert plan is not None and plan.study == "loop" and plan.proxy == "ensemble"
    assert set(plan.mixtures) == {RECOMMENDED, "uniform", "natural", "best trial", "null pick"}
    assert "model 1 of 5: recommended" in out
    refs = {r.name: r for r in load_workspace(tiny_workspace).references}
    for role, name in plan.names.items():
        assert name in refs and refs[name].mixture == pytest.approx(plan.mixtures[role]), role
    assert main(["validate", "--workspace", root, "--device", "cpu", "--proxy", "ensemble", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["references"]) == ["ref-alpha", "ref-beta", "seed-ref"]  # the loop's models are not references
    loop = data["loop"]
    assert [e["role"] for e in loop["entries"]] == [RECOMMENDED, "uniform", "natural", "best trial", "null pick"]
    for e in loop["entries"]:
        assert 1 <= e["rank"] <= 4 and set(e["domains"]) == set(data["domains"])
        assert e["regret"]["low"] <= e["regret"]["value"] <= e["regret"]["high"]
        assert (e["outcome"] in ("beat", "not beat", "inconclusive")) == (e["role"] != RECOMMENDED)
    assert loop["verdict"].startswith("Loop: the trained recommendation ranks")
    text_lines = explanation(data)
    assert text_lines[0] == "Why, in words:" and any("Trained, the recommended mixture ranks" in t for t in text_lines)


def _page(name: str, role: str = "edit"):
    from streamlit.testing.v1 import AppTest

    from app.auth import ROLE_KEY

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / f"{name}.py"), default_timeout=120)
    at.session_state[ROLE_KEY] = role
    return at.run()


@pytest.fixture()
def page_ws(tiny_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEMIX_ALLOWED_ROOT", str(tiny_workspace.parent))
    monkeypatch.setenv("DEMIX_WORKSPACE", str(tiny_workspace))
    return tiny_workspace


def test_validate_page_draws_the_loop_and_explains(page_ws: Path) -> None:
    from demix_core.proxy import get_kind
    from demix_core.validation.methods import NULL
    from demix_core.validation.report import ValidationReport, method_report, record_validation

    MERGED = get_kind("merge").report_name

    ws = load_workspace(page_ws)
    ws.references = [ReferenceEntry(name=f"ref-{c.name}", path=c.path, mixture={c.name: 1.0}) for c in ws.components]
    ws.save()
    rng = np.random.default_rng(0)
    ref = {d: rng.normal(size=12) for d in ("general", "code")}
    proxy = {d: v + 0.1 * rng.normal(size=12) for d, v in ref.items()}
    null = {d: rng.normal(size=12) for d in ref}
    refs = np.column_stack([ref["general"], ref["code"]])
    loop = loop_report([f"r{i}" for i in range(12)], refs, {RECOMMENDED: ("loop-rec", {"alpha": 1.0}, refs.max(0)),
                                                           "uniform": ("loop-uni", {"alpha": 1.0}, refs.min(0))},
                       ["general", "code"])
    report = ValidationReport([f"r{i}" for i in range(12)], [{} for _ in range(12)], ["general", "code"],
                              {d: list(v) for d, v in ref.items()},
                              [method_report(MERGED, proxy, ref), method_report(NULL, null, ref, with_recovery=False)],
                              {}, "quick", {MERGED: {d: list(v) for d, v in proxy.items()},
                                            NULL: {d: list(v) for d, v in null.items()}}, {"merge": MERGED}, loop)
    record_validation(ws, report)
    at = _page("validate")
    assert not at.exception
    assert any(m.value.startswith("**Loop: the trained recommendation ranks 1 of 13") for m in at.markdown)
    assert any("the merge proxy ranks the references better than the weight alone" in m.value for m in at.markdown)
    loop_table = [d.value for d in at.dataframe if "regret [95% CI]" in d.value.columns]
    assert len(loop_table) == 1 and list(loop_table[0]["model"]) == [RECOMMENDED, "uniform"]
    assert list(loop_table[0]["verdict"]) == ["", "beat"]


def test_recommend_page_trains_the_recommendation_in_the_background(page_ws: Path, one_torch_thread) -> None:
    from demix_core.background import jobs
    from demix_core.search.study import create_study
    from demix_core.search.worker import Worker

    ws = load_workspace(page_ws)
    create_study(ws, "r", sampler="random", proxy="ensemble")
    Worker(ws, "r", device="cpu", log=lambda s: None).run(8)
    at = _page("recommend")
    at.number_input(key="samples").set_value(1000)
    at.button(key="run_rec").click().run()
    assert not at.exception
    viewer = _page("recommend", "view")
    assert not [b for b in viewer.button if b.key == "rec_train_train"]
    at.checkbox(key="rec_train_baselines").uncheck()
    at.button(key="rec_train_train").click().run()
    job = jobs.latest(page_ws, "train-reference")
    assert job is not None and job.command[3:5] == ["recommend", "--workspace"]
    assert job.command[-2:] == ["--train", "--no-baselines"]
    jobs.stop(job)


def test_explanation_names_the_weak_proxy_behind_the_recommendation() -> None:
    def method(name: str, rho: dict[str, float], macro: float) -> dict:
        fig = {d: {"value": v, "low": v, "high": v} for d, v in rho.items()}
        return {"name": name, "rho": fig, "macro": {"value": macro}}

    data = {"domains": ["general", "math"], "suite": "quick", "proxies": {"merge": "m", "ensemble": "e"},
            "methods": [method("m", {"general": 0.9, "math": 0.13}, 0.52),
                        method("e", {"general": 0.85, "math": 0.9}, 0.88),
                        method("null: domain weight", {"general": 0.8, "math": 0.88}, 0.84)],
            "pick": {"proxy": "ensemble"},
            "loop": {"proxy": "merge", "references": ["r1", "r2", "r3"],
                     "entries": [{"role": RECOMMENDED, "rank": 3, "outcome": None},
                                 {"role": "natural", "rank": 1, "outcome": "not beat"}]}}
    text = "\n".join(explanation(data))
    assert "- general: the merge proxy ranks the references better than the weight alone (rho 0.90 against 0.80)" \
        in text
    assert "- math: how much math data a mixture holds already ranks the references as well as the best proxy " \
           "(weight alone rho 0.88, ensemble proxy 0.90)" in text
    assert "macro rho 0.52 against 0.88" in text
    assert "ranks 3 of 4 (behind 2 reference(s)). It loses to natural beyond noise" in text
    assert "fitted on trials of the merge proxy, which ranks the references poorly on math (rho 0.13)" in text
    assert "Run the study with the ensemble proxy that validation picked." in text
