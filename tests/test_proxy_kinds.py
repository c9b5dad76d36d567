"""Proxy kinds across the product: studies of the ensemble proxy, recommend's --proxy, the default-proxy rule,
validation of both kinds with its pick (report, record file, verdict), and the ensemble cache built from the
engine's resident components."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_hot_references

from demix_core.engine import Engine
from demix_core.errors import ConfigError, StudyError
from demix_core.proxy import get_kind
from demix_core.search.record import study_proxy
from demix_core.search.study import create_study, default_proxy, load_study
from demix_core.validation.methods import NULL
from demix_core.validation.report import ValidationReport, method_report, record_validation
from demix_core.validation.stats import Figure, outcome
from demix_core.workspace.manifest import load_workspace
from demix_core.workspace.records import read_validation, validated_proxy

MERGED, ENSEMBLE = get_kind("merge").report_name, get_kind("ensemble").report_name


def test_ensemble_study_trials_are_the_engines_ensemble_scores(tiny_workspace: Path, one_torch_thread,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from demix_core.cli import main
    from demix_core.search.worker import Worker

    assert main(["study", "create", "--workspace", str(tiny_workspace), "--study", "ens", "--sampler", "random",
                 "--proxy", "ensemble"]) == 0
    assert "proxy ensemble (flag)" in capsys.readouterr().out
    ws = load_workspace(tiny_workspace)
    worker = Worker(ws, "ens", device="cpu", log=lambda s: None)
    assert worker.engine.proxy_kind == "ensemble"
    assert worker.run(8) == 8
    study = load_study(ws, "ens")
    assert study_proxy(study) == "ensemble"
    engine = Engine(ws, suite="quick", device="cpu", proxy="ensemble")
    done = study.get_trials(deepcopy=False)
    assert len(done) == 8
    for t in done:
        assert t.user_attrs["proxy"] == "ensemble" and t.user_attrs["merge_s"] == 0.0
        want = engine.evaluate(t.user_attrs["mixture"]).scores.domains
        assert t.values == pytest.approx([want[d] for d in study.metric_names], abs=1e-9)
    merged = Engine(ws, suite="quick", device="cpu").evaluate(done[0].user_attrs["mixture"]).scores.domains
    assert [merged[d] for d in study.metric_names] != pytest.approx(done[0].values, abs=1e-6)
    assert main(["study", "status", "--workspace", str(tiny_workspace), "--study", "ens", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["proxy"] == "ensemble"
    # recommend fits the trials of the asked proxy kind only, and says so when there are none
    from demix_core.search.recommend import recommend_for_study

    with pytest.raises(StudyError, match="no complete trial scored by the merge proxy .*ensemble"):
        recommend_for_study(ws, study, samples=1000, proxy="merge")
    assert recommend_for_study(ws, study, samples=1000, top_k=8, proxy="ensemble").trials == 8


def _hand_report(merge: dict[str, np.ndarray], ens: dict[str, np.ndarray], null: dict[str, np.ndarray],
                 ref: dict[str, np.ndarray], suite: str = "quick") -> ValidationReport:
    methods = [method_report(MERGED, merge, ref), method_report(ENSEMBLE, ens, ref),
               method_report(NULL, null, ref, with_recovery=False)]
    scores = {MERGED: merge, ENSEMBLE: ens, NULL: null}
    n = len(next(iter(ref.values())))
    return ValidationReport([f"r{i}" for i in range(n)], [{} for _ in range(n)], list(ref),
                            {d: list(v) for d, v in ref.items()}, methods, {}, suite,
                            {k: {d: list(v) for d, v in s.items()} for k, s in scores.items()},
                            {"merge": MERGED, "ensemble": ENSEMBLE})


def _numbers(n: int = 24, seed: int = 0) -> tuple[dict, dict, dict]:
    rng = np.random.default_rng(seed)
    ref = {d: rng.normal(size=n) for d in ("general", "code")}
    good = {d: v + 0.05 * rng.normal(size=n) for d, v in ref.items()}  # rho ~ 1
    unrelated = {d: rng.normal(size=n) for d in ref}  # rho ~ 0
    return ref, good, unrelated


def test_outcome_reads_the_paired_interval() -> None:
    assert outcome(Figure(0.2, 0.1, 0.3)) == "beat"
    assert outcome(Figure(-0.2, -0.3, -0.1)) == "not beat"
    assert outcome(Figure(0.0, 0.0, 0.0)) == "inconclusive"  # the same predictions: neither wins
    assert outcome(Figure(0.1, -0.1, 0.3)) == "inconclusive"
    assert outcome(Figure(float("nan"))) == "inconclusive"


def test_verdict_names_the_proxy_to_trust_on_hand_made_numbers() -> None:
    ref, good, unrelated = _numbers()
    report = _hand_report(unrelated, good, unrelated, ref)
    pick = report.pick()
    assert pick is not None and pick.proxy == "ensemble" and pick.clear
    assert pick.macro == pytest.approx(report.methods[1].macro.value)
    assert pick.versus.value == pytest.approx(report.methods[1].macro.value - report.methods[0].macro.value)
    assert pick.versus.low > 0 and outcome(pick.baselines[NULL]) == "beat"
    verdict = report.verdict()
    assert verdict.startswith("Verdict: trust the ensemble proxy (output ensemble)") and "beats null" in verdict
    swapped = _hand_report(good, unrelated, unrelated, ref).pick()
    assert swapped is not None and swapped.proxy == "merge" and swapped.clear
    # the null as good as the picked proxy: the verdict says the proxy adds nothing here
    tie_null = _hand_report(unrelated, good, good, ref)
    assert outcome(tie_null.pick().baselines[NULL]) != "beat"  # type: ignore[union-attr]
    assert "No proxy adds information beyond the baselines" in tie_null.verdict()
    # two proxies of the same quality on 6 references: within noise, the higher estimate decides
    rng = np.random.default_rng(5)
    small = {d: v[:6] for d, v in ref.items()}
    a = {d: v + 0.8 * rng.normal(size=6) for d, v in small.items()}
    b = {d: v + 0.8 * rng.normal(size=6) for d, v in small.items()}
    close = _hand_report(a, b, {d: v[:6] for d, v in unrelated.items()}, small)
    pick = close.pick()
    assert pick is not None and not pick.clear and pick.versus.low <= 0 <= pick.versus.high
    assert pick.proxy == ("merge" if close.methods[0].macro.value >= close.methods[1].macro.value else "ensemble")
    assert "within the noise of 6 references" in close.verdict()


def test_default_proxy_rule(tiny_workspace: Path) -> None:
    ws = load_workspace(tiny_workspace)
    assert default_proxy(ws, "quick") == ("merge", "default") and validated_proxy(ws) is None
    ref, good, unrelated = _numbers()
    record_validation(ws, _hand_report(unrelated, good, unrelated, ref, suite="quick"))  # picks ensemble
    assert default_proxy(ws, "quick") == ("ensemble", "validation (quick)")
    assert default_proxy(ws, "paper") == ("ensemble", "validation (quick)")  # the newest record of any suite
    record_validation(ws, _hand_report(good, unrelated, unrelated, ref, suite="paper"))  # picks merge
    assert default_proxy(ws, "paper") == ("merge", "validation (paper)")
    assert default_proxy(ws, "quick") == ("ensemble", "validation (quick)")  # its own suite's record first
    assert read_validation(ws, "paper")["pick"]["proxy"] == "merge"  # type: ignore[index]
    study = create_study(ws, "after", sampler="random")
    assert study.user_attrs["proxy"] == "ensemble" and study.user_attrs["proxy_from"] == "validation (quick)"
    assert create_study(ws, "flagged", sampler="random", proxy="merge").user_attrs["proxy"] == "merge"
    ws.defaults["proxy"] = "merge"
    ws.save()
    ws = load_workspace(tiny_workspace)
    assert default_proxy(ws, "quick") == ("merge", "manifest")
    assert default_proxy(ws, "quick", "ensemble") == ("ensemble", "flag")
    with pytest.raises(ConfigError, match="unknown proxy kind 'blend'"):
        default_proxy(ws, "quick", "blend")
    text = (tiny_workspace / "demix.yaml").read_text().replace("proxy: merge", "proxy: blend")
    (tiny_workspace / "demix.yaml").write_text(text)
    with pytest.raises(Exception, match="defaults.proxy is 'blend'; it must be a proxy kind"):
        load_workspace(tiny_workspace)


def test_validate_reports_both_proxies_and_records_the_pick(tiny_workspace: Path, tiny_family, one_torch_thread,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from demix_core.cli import main

    one_hot_references(tiny_workspace)
    assert main(["validate", "--workspace", str(tiny_workspace), "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in out["methods"]]
    assert names == [MERGED, ENSEMBLE, NULL] and out["proxies"] == {"merge": MERGED, "ensemble": ENSEMBLE}
    for m in out["methods"][:2]:
        for d in ("general", "code", "math"):
            assert m["rho"][d]["value"] == pytest.approx(1.0)
            assert m["recovery"][d]["value"] == pytest.approx(1.0, abs=1e-6)
    for d in out["domains"]:  # one-hot mixtures: the ensemble is the reference itself, as is the merge
        assert out["method_scores"][ENSEMBLE][d] == pytest.approx(out["reference_scores"][d], abs=1e-6)
        assert out["method_scores"][MERGED][d] == pytest.approx(out["reference_scores"][d], abs=1e-6)
    assert out["pick"]["proxy"] == "merge" and out["pick"]["versus"]["value"] == pytest.approx(0.0)  # a tie: merge
    assert NULL in out["pick"]["baselines"] and out["verdict"].startswith("Verdict: trust the merge proxy")
    record = Path(out["record"])
    assert record == tiny_workspace / "validation" / "quick.json" and read_validation(
        load_workspace(tiny_workspace), "quick")["pick"] == out["pick"]  # type: ignore[index]
    assert main(["validate", "--workspace", str(tiny_workspace), "--device", "cpu", "--proxy", "ensemble",
                 "--no-record"]) == 0
    text = capsys.readouterr().out
    assert "[3/3] ref-gamma" in text and ENSEMBLE in text and MERGED not in text and "recorded in" not in text


def test_engine_builds_the_ensemble_cache_from_resident_components(tiny_workspace: Path, tmp_path: Path,
                                                                   one_torch_thread) -> None:
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer

    ws = load_workspace(tiny_workspace)
    engine = Engine(ws, suite="quick", device="cpu", proxy="ensemble", ensemble_cache=tmp_path / "c")
    engine.evaluate([0.2, 0.3, 0.5])  # the proxy holds some merge before the build
    resident = engine.kind("ensemble").scorer()
    assert set(resident.provenance.source.values()) == {"computed (resident)"}
    from_disk = EnsembleScorer.build(engine.suite, ws.component_paths(), names=engine.names, device="cpu")
    assert set(from_disk.provenance.source.values()) == {"computed"}
    assert torch_equal(resident.logprobs, from_disk.logprobs)
    again = Engine(ws, suite="quick", device="cpu", proxy="ensemble", ensemble_cache=tmp_path / "c")
    assert set(again.kind("ensemble").scorer().provenance.source.values()) == {"disk"}
    merged = engine.mixture([0.2, 0.3, 0.5])
    engine.resident.merge_into(engine.proxy, merged)  # the merge proxy still works after the build
    assert engine.suite.score(engine.proxy.model).domains == pytest.approx(
        Engine(ws, suite="quick", device="cpu").evaluate(merged).scores.domains, abs=1e-9)


def torch_equal(a, b) -> bool:  # noqa: ANN001 - tensors
    import torch

    return bool(torch.allclose(a, b, rtol=0, atol=1e-9))
